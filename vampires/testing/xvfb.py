"""A private X display (Xvfb) for window tests and benchmarks, and a clean Qt exit from it.

Xvfb lives as long as the process that started it (it gets SIGTERM when that
process ends), so a Qt application on it is destroyed by PySide's own exit
handler while its X server is still there: deleting the application by hand
before the end of a test session crashed in one run of ten.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess

__all__ = ["close_qt_windows", "start_xvfb"]

_PR_SET_PDEATHSIG = 1


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
        preexec_fn=_die_with_parent,
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


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it ends (Linux)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def close_qt_windows() -> None:
    """Close every top-level window of the Qt application, if there is one.

    The application itself is left alone: PySide destroys it at exit, and the
    X server of :func:`start_xvfb` outlives this process.
    """
    try:
        from PySide6 import QtWidgets
    except ImportError:
        return
    if QtWidgets.QApplication.instance() is None:
        return
    for widget in QtWidgets.QApplication.topLevelWidgets():
        widget.close()
    QtWidgets.QApplication.processEvents()
    gc.collect()
