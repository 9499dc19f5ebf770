"""A real X display (Xvfb) for the viewer's window tests, started once per session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from vampires.testing.xvfb import close_qt_windows, start_xvfb


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """Start Xvfb on a free display number; the Qt application lives on it until the end."""
    try:
        proc, number = start_xvfb()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = number
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        yield os.environ["DISPLAY"]
    finally:
        close_qt_windows()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not _qt_application_alive():
            proc.terminate()
            proc.wait(timeout=10)
        else:
            # Xvfb ends with this process (start_xvfb), after PySide destroyed the
            # application at exit: deleting it here crashed once in ten runs
            _LEFT_RUNNING.append(proc)


_LEFT_RUNNING: list[subprocess.Popen[bytes]] = []  # no "still running" warning meanwhile


def _qt_application_alive() -> bool:
    try:
        from PySide6 import QtWidgets
    except ImportError:
        return False
    return QtWidgets.QApplication.instance() is not None
