"""The simulated focus stage: PSFs widen away from best focus (autofocus example)."""

from __future__ import annotations

import numpy as np
import pytest

from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.backends.simulated import SimulatedBackend
from vampires.camera.modes import ReadoutMode
from vampires.camera.table import load_camera_table
from vampires.errors import CameraError


def _width(frame: np.ndarray) -> float:
    """Second-moment width of the background-subtracted frame [px]."""
    img = frame.astype(np.float64) - np.median(frame)
    img[img < 0] = 0
    y, x = np.indices(img.shape)
    total = img.sum()
    cy, cx = (img * y).sum() / total, (img * x).sum() / total
    return float(np.sqrt((img * ((y - cy) ** 2 + (x - cx) ** 2)).sum() / total))


def _frame(backend: SimulatedBackend, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, np.uint16)
    backend.read_frame(out, counter=1)
    return out


def test_psf_widens_with_defocus_and_is_narrowest_at_best_focus() -> None:
    table = load_camera_table("vcam1")
    crop = table.crop("ONEARC")
    backend = SimulatedBackend(seed=3)
    backend.open(table)
    settings = AcquisitionSettings(crop=crop, readout=ReadoutMode.SLOW, tint=1e-2, fps=10.0)
    backend.configure(settings)
    try:
        widths = {}
        for defocus in (-1.0, 0.0, 0.5, 1.0):
            backend.set_defocus(defocus)
            widths[defocus] = _width(_frame(backend, crop.shape))
        assert widths[0.0] < widths[0.5] < widths[1.0]
        assert widths[-1.0] == pytest.approx(widths[1.0], rel=0.1)
    finally:
        backend.close()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, True])
def test_bad_defocus_is_refused(bad: object) -> None:
    backend = SimulatedBackend()
    with pytest.raises(CameraError, match="defocus"):
        backend.set_defocus(bad)  # type: ignore[arg-type]
    assert backend.defocus == 0.0
