"""vampires.fitslog: FITS cube logging.

A :class:`Logger` writes one stream into FITS cubes cut by a
:class:`CubePolicy`; a logger daemon runs one per camera and a
:class:`LoggerGroup` drives them all (:func:`start_logger` starts one).
:func:`open_partial` reads the complete frames of a cube while it is being
written; :func:`recover_folder` and :func:`recover_tmp` finish the cubes a
killed logger left. ::

    from vampires.fitslog import CubePolicy, Logger

    with Logger("vcam1", CubePolicy(frames_per_cube=250), root="/mnt/fuuu") as log:
        log.start()

The names are imported on first use (the logger pulls numba and astropy; a
command that only drives daemons does not).
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vampires.fitslog.daemon import LoggerDaemon
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.partial import PartialCube, open_partial
    from vampires.fitslog.policy import CubePolicy
    from vampires.fitslog.recover import RecoverReport, recover_folder, recover_tmp
    from vampires.fitslog.remote import LoggerGroup, start_logger
    from vampires.fitslog.status import LoggerState, LoggerStatus
    from vampires.fitslog.writer import CubeJob, CubeWriter, WrittenCube

__all__ = [
    "CubeJob",
    "CubePolicy",
    "CubeWriter",
    "Logger",
    "LoggerDaemon",
    "LoggerGroup",
    "LoggerState",
    "LoggerStatus",
    "PartialCube",
    "RecoverReport",
    "WrittenCube",
    "open_partial",
    "recover_folder",
    "recover_tmp",
    "start_logger",
]

_LAZY = MappingProxyType(
    {
        "CubeJob": "vampires.fitslog.writer",
        "CubePolicy": "vampires.fitslog.policy",
        "CubeWriter": "vampires.fitslog.writer",
        "Logger": "vampires.fitslog.logger",
        "LoggerDaemon": "vampires.fitslog.daemon",
        "LoggerGroup": "vampires.fitslog.remote",
        "LoggerState": "vampires.fitslog.status",
        "LoggerStatus": "vampires.fitslog.status",
        "PartialCube": "vampires.fitslog.partial",
        "RecoverReport": "vampires.fitslog.recover",
        "WrittenCube": "vampires.fitslog.writer",
        "open_partial": "vampires.fitslog.partial",
        "recover_folder": "vampires.fitslog.recover",
        "recover_tmp": "vampires.fitslog.recover",
        "start_logger": "vampires.fitslog.remote",
    }
)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'vampires.fitslog' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
