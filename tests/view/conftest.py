"""A real X display (Xvfb) for the viewer's window tests, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from vampires.testing.xvfb import drop_qt_application, start_xvfb


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
        drop_qt_application()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(timeout=10)
