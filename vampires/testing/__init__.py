"""vampires.testing: fakes and conformance suites for tests and benchmarks.

- :class:`BackendTests`: the suite every camera backend passes (needs pytest);
- :class:`FakeDcamApi`, :class:`FakeOrcaQuest`: the DCAM-API and an ORCA-Quest
  in Python, for ``DcamBackend`` without hardware;
- :class:`FakeGenicamCamera`, :func:`fake_camera_available`: Aravis' fake
  GigE camera in a process, for ``GenicamBackend``;
- :class:`CWriterProcess`, :func:`run_writer`: a stream writer in its own
  process that writes as the C programs at the telescope do;
- :func:`start_xvfb`, :func:`close_qt_windows`: a virtual display for the
  viewer's tests and benchmark.

The names are imported on first use (each pulls what it fakes).
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vampires.testing.backend import BackendTests
    from vampires.testing.cwriter import CWriterProcess, CWriterResult, run_writer
    from vampires.testing.fake_dcam import FakeDcamApi, FakeOrcaQuest
    from vampires.testing.genicam import FakeGenicamCamera, fake_camera_available
    from vampires.testing.xvfb import close_qt_windows, start_xvfb

__all__ = [
    "BackendTests",
    "CWriterProcess",
    "CWriterResult",
    "FakeDcamApi",
    "FakeGenicamCamera",
    "FakeOrcaQuest",
    "close_qt_windows",
    "fake_camera_available",
    "run_writer",
    "start_xvfb",
]

_LAZY = MappingProxyType(
    {
        "BackendTests": "vampires.testing.backend",
        "CWriterProcess": "vampires.testing.cwriter",
        "CWriterResult": "vampires.testing.cwriter",
        "FakeDcamApi": "vampires.testing.fake_dcam",
        "FakeGenicamCamera": "vampires.testing.genicam",
        "FakeOrcaQuest": "vampires.testing.fake_dcam",
        "close_qt_windows": "vampires.testing.xvfb",
        "fake_camera_available": "vampires.testing.genicam",
        "run_writer": "vampires.testing.cwriter",
        "start_xvfb": "vampires.testing.xvfb",
    }
)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'vampires.testing' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
