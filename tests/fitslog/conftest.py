"""Fixtures shared by the FITS logging tests: a small stream, a full check of one logged cube.

Plain helpers (``frame_for``, ``publish_lockstep``, ``cubes_in``, ``make_job``...)
are in :mod:`tests.helpers`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import fitsio
import numpy as np
import pytest
from astropy.io import fits

from tests.helpers import LOG_SHAPE
from vampires.fitslog.names import parse_cube_filename
from vampires.fitslog.sidecar import FrameTimes, parse_sidecar
from vampires.stream import Stream

#: Keywords the pipeline reads (downstream-contract.md, practice §3.4).
PIPELINE_KEYS = (
    "OBJECT",
    "OBSERVER",
    "DATE-OBS",
    "RA",
    "DEC",
    "RADESYS",
    "EQUINOX",
    "ALTITUDE",
    "AZIMUTH",
    "D_IMRPAP",
    "D_IMRANG",
    "FILTER01",
    "FILTER02",
    "U_FLDSTP",
    "RET-ANG1",
    "U_CAMERA",
    "U_DETMOD",
    "DATA-TYP",
    "OBS-MOD",
    "EXPTIME",
    "EXTTRIG",
    "PRD-MIN1",
    "PRD-MIN2",
    "PRD-RNG1",
    "PRD-RNG2",
    "MJD",
    "MJD-STR",
    "MJD-END",
    "UT",
    "UT-STR",
    "UT-END",
    "HST",
    "HST-STR",
    "HST-END",
    "DATE",
    "CTYPE1",
    "CTYPE2",
    "CRPIX1",
    "CRPIX2",
    "CRVAL1",
    "CRVAL2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "LOGDROP",
    "LOGDRPIN",
    "LOGCLOSE",
    "LOGVERS",
)


def fitsverify_clean(path: Path) -> None:
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed (Debian package 'fitsverify')")
    result = subprocess.run(
        ["fitsverify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification found 0 warning(s) and 0 error(s)" in result.stdout, result.stdout


CheckCube = Callable[..., tuple[np.ndarray, fits.Header, FrameTimes]]


@pytest.fixture
def check_cube() -> CheckCube:
    """Return ``check(path, frames=None) -> (pixels, header, times)`` verifying everything."""

    def check(
        path: Path, frames: np.ndarray | None = None, *, verify: bool = True, keys: bool = True
    ):
        path = Path(path)
        assert path.suffix == ".fits"
        assert path.is_file()
        parsed = parse_cube_filename(path.name)
        assert parsed is not None, path.name
        if verify:
            fitsverify_clean(path)
        with fits.open(path) as hdul:
            header = hdul[0].header.copy()
            data = np.array(hdul[0].data)
        raw = fitsio.read(str(path))
        if frames is not None:
            assert (data.dtype.kind, data.dtype.itemsize) == (frames.dtype.kind, frames.itemsize)
        assert np.array_equal(raw, data)
        n3, n2, n1 = header["NAXIS3"], header["NAXIS2"], header["NAXIS1"]
        assert data.shape == (n3, n2, n1)
        for key in PIPELINE_KEYS if keys else ():
            assert key in header, f"{path.name}: missing {key}"
        assert isinstance(header["EXTTRIG"], bool)
        assert len(header["DATE"]) == 19
        assert "." not in header["DATE"]
        if frames is not None:
            assert np.array_equal(data, frames)
        sidecar = path.with_suffix(".txt")
        times = parse_sidecar(sidecar.read_text())
        assert len(times) == n3
        rows = [ln for ln in sidecar.read_text().splitlines() if not ln.startswith("#")]
        assert len(rows) == n3
        assert np.all(np.diff(times.cnt0) > 0)
        # name, UT-STR and the sidecar agree
        _, h, m, s, _ns = parsed
        assert header["UT-STR"].startswith(f"{h:02d}:{m:02d}:{s:02d}")
        if header.get("LOGTSRC") == "LOG" and times.logger_time[0] > 0:
            name_sod = h * 3600 + m * 60 + s + _ns * 1e-9
            assert abs(times.logger_time[0] % 86400 - name_sod) < 2e-3  # downstream rule
        return data, header, times

    return check


@pytest.fixture
def stream(shm_dir: Path) -> Iterator[Stream]:
    """``vcam1``: uint16 frames of :data:`~tests.helpers.LOG_SHAPE`, with camera keywords."""
    s = Stream.create("vcam1", LOG_SHAPE, "uint16")
    s.keywords.update({"EXPTIME": 0.001, "DATA-TYP": "OBJECT", "EXTTRIG": True})
    yield s
    s.close()
