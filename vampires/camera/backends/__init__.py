"""Camera backends: the :class:`Backend` protocol and its implementations.

:mod:`vampires.camera.backends.base` documents the protocol a driver implements;
:mod:`vampires.camera.backends.simulated` is the simulator,
:mod:`vampires.camera.backends.dcam` the ORCA-Quest (DCAM-API through pylablib),
:mod:`vampires.camera.backends.genicam` the Flea3 and other GenICam cameras
(Aravis 0.8), and :mod:`vampires.camera.backends.factory` picks one from
``--backend`` or the config file.
"""

from __future__ import annotations

from vampires.camera.backends.base import AcquisitionSettings, Backend, FrameTiming

__all__ = ["AcquisitionSettings", "Backend", "FrameTiming"]
