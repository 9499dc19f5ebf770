from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vampires import kernels
from vampires.errors import ConfigError

DTYPES = [
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
]
shapes = st.tuples(st.integers(1, 37), st.integers(1, 41))


def _decode(stored: np.ndarray, fmt: kernels.FitsFormat) -> np.ndarray:
    """Reference decoding in numpy: stored big-endian bits + BZERO, exact in integers."""
    if fmt.dtype.kind == "f":
        return stored.astype(fmt.dtype)
    native = stored.astype(stored.dtype.newbyteorder("="))
    bits = native.view(f"u{fmt.itemsize}")
    return (bits ^ np.array(fmt.flip, bits.dtype)).view(fmt.dtype)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    kernels.warm_up()


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_frame_to_fits_exact(dtype: str, data: st.DataObject) -> None:
    shape = data.draw(shapes)
    frame = data.draw(arrays(np.dtype(dtype), shape))
    fmt = kernels.fits_format(dtype)
    out = np.empty(shape, fmt.disk)
    kernels.frame_to_fits(frame, out)
    decoded = _decode(out, fmt)
    assert decoded.dtype == frame.dtype
    assert decoded.tobytes() == frame.tobytes()  # bit-exact, NaNs included


def test_uint16_rule_is_minus_bzero() -> None:
    frame = np.array([[0, 1, 32767, 32768, 65535]], np.uint16)
    out = np.empty(frame.shape, ">i2")
    kernels.to_fits_int16(frame, out)
    assert out.tolist() == [[-32768, -32767, -1, 0, 32767]]
    assert out.tobytes() == (frame.astype(np.int32) - 32768).astype(">i2").tobytes()


@pytest.mark.parametrize(
    ("dtype", "bitpix", "bzero"),
    [
        ("uint8", 8, 0),
        ("int16", 16, 0),
        ("uint16", 16, 32768),
        ("int32", 32, 0),
        ("uint32", 32, 2**31),
        ("float32", -32, 0),
        ("float64", -64, 0),
    ],
)
def test_formats_match_astropy(tmp_path, dtype: str, bitpix: int, bzero: int) -> None:
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    if info is not None:
        frame = rng.integers(info.min, info.max, (5, 7), dtype=dtype, endpoint=True)
    else:
        frame = rng.standard_normal((5, 7)).astype(dtype)
    fmt = kernels.fits_format(dtype)
    assert (fmt.bitpix, fmt.bzero) == (bitpix, bzero)
    path = tmp_path / "a.fits"
    fits.PrimaryHDU(frame).writeto(path)
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        stored = hdul[0].data
        assert hdul[0].header["BITPIX"] == bitpix
        assert hdul[0].header.get("BZERO", 0) == bzero
        out = np.empty(frame.shape, fmt.disk)
        kernels.frame_to_fits(frame, out)
        assert out.tobytes() == stored.astype(fmt.disk).tobytes()


@settings(max_examples=20, deadline=None)
@given(
    depth=st.integers(1, 6),
    count=st.integers(1, 9),
    start=st.integers(0, 5),
    shape=shapes,
    dtype=st.sampled_from(["uint16", "float32", "int8", "uint64"]),
)
def test_gather_from_circular_buffer(depth, count, start, shape, dtype) -> None:
    start %= depth
    rng = np.random.default_rng(depth * 100 + count)
    ring = rng.integers(0, 120, (depth, *shape)).astype(dtype)
    fmt = kernels.fits_format(dtype)
    out = np.empty((count, *shape), fmt.disk)
    kernels.gather_to_fits(ring, start, out)
    expected = ring[[(start + k) % depth for k in range(count)]]
    assert _decode(out, fmt).tobytes() == expected.tobytes()


@pytest.mark.parametrize("factor", [2, 3])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_bin_frame_exact(factor: int, data: st.DataObject) -> None:
    h, w = data.draw(st.tuples(st.integers(factor, 40), st.integers(factor, 40)))
    frame = data.draw(arrays(np.uint16, (h, w)))
    binned = kernels.bin_frame(frame, factor)
    hh, ww = h // factor, w // factor
    expected = frame[: hh * factor, : ww * factor].astype(np.float64)
    expected = (expected.reshape(hh, factor, ww, factor).sum(axis=(1, 3)) / factor**2).astype(
        np.float32
    )
    assert binned.shape == (hh, ww)
    assert np.array_equal(binned, expected)


def test_big_endian_input_and_noncontiguous() -> None:
    frame = np.arange(24, dtype=">u2").reshape(4, 6)
    out = np.empty((4, 6), ">i2")
    kernels.frame_to_fits(frame, out)
    assert np.array_equal(out.astype(np.int32) + 32768, frame.astype(np.int32))
    strided = np.arange(48, dtype=np.uint16).reshape(4, 12)[:, ::2]
    kernels.frame_to_fits(strided, out)
    assert np.array_equal(out.astype(np.int32) + 32768, strided)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot be logged"):
        kernels.fits_format(np.complex64)
    with pytest.raises(ConfigError, match="not a numpy pixel type"):
        kernels.fits_format("nonsense-type")
    with pytest.raises(ConfigError, match="output slot"):
        kernels.frame_to_fits(np.zeros((3, 3), np.uint16), np.empty((3, 4), ">i2"))
    with pytest.raises(ConfigError, match="output slot"):
        kernels.frame_to_fits(np.zeros((3, 3), np.uint16), np.empty((3, 3), ">i4"))
    with pytest.raises(ConfigError, match="C-contiguous"):
        kernels.frame_to_fits(np.zeros((3, 3), np.uint16), np.empty((3, 6), ">i2")[:, ::2])
    with pytest.raises(ConfigError, match="uint16"):
        kernels.to_fits_int16(np.zeros((2, 2), np.int16), np.empty((2, 2), ">i2"))
    with pytest.raises(ConfigError, match="start"):
        kernels.gather_to_fits(np.zeros((2, 3, 3), np.uint16), 2, np.empty((1, 3, 3), ">i2"))
    with pytest.raises(ConfigError, match="does not match"):
        kernels.gather_to_fits(np.zeros((2, 3, 3), np.uint16), 0, np.empty((1, 3, 4), ">i2"))
    with pytest.raises(ConfigError, match="factor"):
        kernels.bin_frame(np.zeros((4, 4)), 0)
    with pytest.raises(ConfigError, match="factor"):
        kernels.bin_frame(np.zeros((4, 4)), True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="2-D"):
        kernels.bin_frame(np.zeros((2, 4)), 3)


def test_import_vampires_does_not_import_numba() -> None:
    code = (
        "import sys, vampires, vampires.kernels, vampires.fitslog.policy, "
        "vampires.cli.recover, vampires.fitslog.recover\n"
        "bad = [m for m in ('numba', 'astropy') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
