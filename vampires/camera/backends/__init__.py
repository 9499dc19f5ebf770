"""Camera backends: the :class:`Backend` protocol and its implementations.

:mod:`vampires.camera.backends.base` documents the protocol a real driver
(DCAM for the ORCA-Quest, Spinnaker for the Flea3) implements;
:mod:`vampires.camera.backends.simulated` is the simulator.
"""

from __future__ import annotations

from vampires.camera.backends.base import AcquisitionSettings, Backend, FrameTiming

__all__ = ["AcquisitionSettings", "Backend", "FrameTiming"]
