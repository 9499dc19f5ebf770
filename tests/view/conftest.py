"""A real X display (Xvfb) for the viewer's window tests, started once per session."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """Start Xvfb on a free display number; the Qt application lives on it until the end."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb; .ci/run installs it)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        proc.wait()
        pytest.fail("Xvfb did not report a display number")
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        yield os.environ["DISPLAY"]
    finally:
        _drop_qt_application()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(timeout=10)


def _drop_qt_application() -> None:
    """Destroy the QApplication before its X server goes away (no XIO error at exit)."""
    try:
        import shiboken6
        from PySide6 import QtWidgets
    except ImportError:
        return
    app = QtWidgets.QApplication.instance()
    if app is None:
        return
    for widget in QtWidgets.QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    app.processEvents()
    gc.collect()  # Python wrappers of Qt objects go first, while the application lives
    shiboken6.delete(app)
    gc.collect()
