"""Cameras: crop/readout tables, the `Camera` handle, backends and the camera daemon.

::

    from vampires.camera import Camera

    with Camera("vcam1", crop="MBI") as cam:      # simulated backend by default
        cam.set_data_type("OBJECT")
    remote = Camera.connect("vcam2")               # a daemon started by `vampires camstart`

Names are imported on first use so that thin commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "DATA_TYPES",
    "BenchState",
    "Camera",
    "CameraGroup",
    "CameraLike",
    "CameraStatus",
    "CameraTable",
    "CropMode",
    "ReadoutMode",
    "RemoteCamera",
    "load_camera_table",
    "start_camera",
    "stop_camera",
    "stop_cameras",
]

_LAZY = {
    "DATA_TYPES": "vampires.camera.modes",
    "BenchState": "vampires.camera.keywords",
    "Camera": "vampires.camera.camera",
    "CameraGroup": "vampires.camera.remote",
    "CameraLike": "vampires.camera.status",
    "CameraStatus": "vampires.camera.status",
    "CameraTable": "vampires.camera.table",
    "CropMode": "vampires.camera.modes",
    "ReadoutMode": "vampires.camera.modes",
    "RemoteCamera": "vampires.camera.remote",
    "load_camera_table": "vampires.camera.table",
    "start_camera": "vampires.camera.remote",
    "stop_camera": "vampires.camera.remote",
    "stop_cameras": "vampires.camera.remote",
}

if TYPE_CHECKING:
    from vampires.camera.camera import Camera
    from vampires.camera.keywords import BenchState
    from vampires.camera.modes import DATA_TYPES, CropMode, ReadoutMode
    from vampires.camera.remote import (
        CameraGroup,
        RemoteCamera,
        start_camera,
        stop_camera,
        stop_cameras,
    )
    from vampires.camera.status import CameraLike, CameraStatus
    from vampires.camera.table import CameraTable, load_camera_table


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'vampires.camera' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
