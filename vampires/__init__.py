"""vampires: the VAMPIRES camera data path as one typed library.

Import what you need from the top level::

    from vampires import Stream, Camera, Logger, CubePolicy, Watcher

Names whose modules pull heavy dependencies (numba, astropy) are imported on
first use, so ``import vampires`` stays fast for thin commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vampires.errors import VampiresError

__version__ = "0.1.0"

__all__ = [
    "Camera",
    "Config",
    "CropMode",
    "CubePolicy",
    "Frame",
    "Logger",
    "LoggerGroup",
    "ReadoutMode",
    "Stream",
    "TcpReceiver",
    "TcpSender",
    "VampiresError",
    "Watcher",
    "ZmqPublisher",
    "ZmqSubscriber",
    "__version__",
]

_LAZY = {
    "Camera": "vampires.camera.camera",
    "Config": "vampires.config",
    "CropMode": "vampires.camera.modes",
    "CubePolicy": "vampires.fitslog.policy",
    "Frame": "vampires.stream.reader",
    "Logger": "vampires.fitslog.logger",
    "LoggerGroup": "vampires.fitslog.remote",
    "ReadoutMode": "vampires.camera.modes",
    "Stream": "vampires.stream.stream",
    "TcpReceiver": "vampires.link.tcp",
    "TcpSender": "vampires.link.tcp",
    "Watcher": "vampires.watch.watcher",
    "ZmqPublisher": "vampires.link.zmq",
    "ZmqSubscriber": "vampires.link.zmq",
}

if TYPE_CHECKING:
    from vampires.camera.camera import Camera
    from vampires.camera.modes import CropMode, ReadoutMode
    from vampires.config import Config
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.fitslog.remote import LoggerGroup
    from vampires.link.tcp import TcpReceiver, TcpSender
    from vampires.link.zmq import ZmqPublisher, ZmqSubscriber
    from vampires.stream.reader import Frame
    from vampires.stream.stream import Stream
    from vampires.watch.watcher import Watcher


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'vampires' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
