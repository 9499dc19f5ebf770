"""A private X display (Xvfb) for window tests and benchmarks, and a clean Qt exit from it."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess

__all__ = ["drop_qt_application", "start_xvfb"]


def start_xvfb(screen: str = "1600x1000x24") -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display number; return the process and its ``DISPLAY`` (``":N"``).

    Raises
    ------
    FileNotFoundError
        Xvfb is not installed (Debian package ``xvfb``).
    RuntimeError
        Xvfb started but reported no display number (it is stopped).
    """
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        msg = "Xvfb not installed (apt-get install xvfb; .ci/run installs it)"
        raise FileNotFoundError(msg)
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
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
        msg = "Xvfb did not report a display number"
        raise RuntimeError(msg)
    return proc, f":{number}"


def drop_qt_application() -> None:
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
