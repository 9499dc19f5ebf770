"""StreamView without a window: frames, pause, dark, read-out, status, saving FITS."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits

from tests.view.viewhelpers import camera_cards
from vampires.errors import ConfigError, FitsFormatError
from vampires.stream import Stream
from vampires.view.model import FORWARDED_FPS, LOCAL_FPS, StreamView, default_max_fps, load_dark


def fitsverify_no_error(path) -> None:
    """fitsverify finds no error; its only warning may be the missing CRVALs.

    CRVAL1/2 come from the telescope through the logger's aux header; the
    viewer saves the stream keywords only, so the WCS sets have no CRVAL.
    """
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed (Debian package 'fitsverify')")
    out = subprocess.run(
        ["fitsverify", str(path)], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    assert " 0 error(s)" in out, out
    warnings = [line for line in out.splitlines() if "*** Warning" in line]
    assert all("CRVAL" in line for line in warnings), out


@pytest.fixture
def mbi_stream():
    cards = camera_cards("vcam1", "MBI_REDUCED")
    shape = (cards["PRD-RNG2"][0], cards["PRD-RNG1"][0])
    with Stream.create("vcam1", shape, np.uint16, nkeywords=200) as stream:
        stream.keywords.update(cards)
        yield stream


def _write(stream: Stream, value: int) -> np.ndarray:
    frame = np.full(stream.shape, value, np.uint16)
    frame[5, 7] = value + 100
    stream.write(frame, acquisition_time=1.7e9 + value)
    return frame


def test_update_renders_the_newest_frame_and_pause_freezes_it(mbi_stream):
    view = StreamView("vcam1")
    try:
        assert not view.update()
        assert view.status().cnt0 is None
        _write(mbi_stream, 300)
        assert view.update()
        assert view.rendered is not None
        assert view.rendered.frame_shape == mbi_stream.shape
        assert view.value_at(7.5, 5.2) == (7, 5, 400.0)
        assert view.value_at(-1, 0) is None
        view.paused = True
        _write(mbi_stream, 500)
        assert not view.update()
        assert view.value_at(7.5, 5.2) == (7, 5, 400.0)  # still the frame shown
        status = view.status()
        assert status.paused
        assert status.cnt0 == 1
        view.paused = False
        _write(mbi_stream, 600)
        assert view.update()
        status = view.status()
        assert status.cnt0 == 3
        assert (status.crop, status.readout, status.data_type) == ("MBI_REDUCED", "SLOW", "OBJECT")
        assert status.exptime == pytest.approx(2.5e-3)
        assert [f.label for f in view.outlines()] == ["F670", "F720", "F760"]
        assert len(view.wcs_points()) == 3
    finally:
        view.close()


def test_logger_state_is_reported(mbi_stream):
    view = StreamView("vcam1")
    try:
        from tests.helpers import wait_for

        wait_for(lambda: view.status().logger == "not running", what="logger state")
    finally:
        view.close()


def test_dark_subtraction_from_a_fits_file(mbi_stream, tmp_path):
    view = StreamView("vcam1", watch_logger=False)
    try:
        _write(mbi_stream, 300)
        view.update()
        dark = np.full(mbi_stream.shape, 290.0, np.float32)
        fits.PrimaryHDU(np.stack([dark - 5, dark + 5])).writeto(tmp_path / "dark.fits")
        view.set_dark(tmp_path / "dark.fits")
        assert view.dark_name == "dark.fits"
        assert view.value_at(7.5, 5.5) == (7, 5, pytest.approx(110.0))
        assert view.rendered is not None
        assert view.rendered.image.max() == pytest.approx(110.0)
        assert view.status().dark == "dark.fits"
        fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(tmp_path / "small.fits")
        with pytest.raises(ConfigError, match="same crop"):
            view.set_dark(tmp_path / "small.fits")
        assert view.dark_name == "dark.fits"  # the good dark stays
        view.set_dark(None)
        assert view.value_at(7.5, 5.5) == (7, 5, 400.0)
    finally:
        view.close()


def test_load_dark_refuses_what_is_not_a_dark(tmp_path):
    with pytest.raises(FitsFormatError, match="cannot read"):
        load_dark(tmp_path / "missing.fits")
    (tmp_path / "text.fits").write_text("not fits at all")
    with pytest.raises(FitsFormatError):
        load_dark(tmp_path / "text.fits")
    fits.PrimaryHDU(np.zeros(5, np.float32)).writeto(tmp_path / "line.fits")
    with pytest.raises(FitsFormatError, match="2-D image"):
        load_dark(tmp_path / "line.fits")


def test_save_fits_writes_the_frame_and_the_stream_keywords(mbi_stream, tmp_path):
    view = StreamView("vcam1", watch_logger=False)
    try:
        with pytest.raises(ConfigError, match="no frame shown"):
            view.save_fits(tmp_path / "none.fits")
        frame = _write(mbi_stream, 300)
        view.update()
        path = view.save_fits(tmp_path / "shown.fits")
        fitsverify_no_error(path)
        with fits.open(path) as hdus:
            header = hdus[0].header
            data = hdus[0].data
        assert data.shape == (1, *frame.shape)
        np.testing.assert_array_equal(data[0], frame)
        assert header["DATA-TYP"] == "OBJECT"
        assert header["EXPTIME"] == pytest.approx(2.5e-3)
        assert header["PRD-MIN1"] == mbi_stream.keywords["PRD-MIN1"]
        assert header["WCSNAME"] == "F760"
        assert "_CROP" not in header
        assert header["UT-STR"]
        with pytest.raises(ConfigError, match="exists"):
            view.save_fits(path)
        view.save_fits(path, overwrite=True)
        with pytest.raises(FitsFormatError, match="cannot write"):
            view.save_fits(tmp_path / "no" / "such" / "dir.fits")
    finally:
        view.close()


@pytest.mark.parametrize(
    ("display", "fps"),
    [
        (":0", LOCAL_FPS),
        (":1.0", LOCAL_FPS),
        ("unix:0", LOCAL_FPS),
        ("/private/tmp/com.apple.launchd.x/org.xquartz:0", LOCAL_FPS),
        ("localhost:10.0", FORWARDED_FPS),
        ("scexao5:11", FORWARDED_FPS),
        (None, LOCAL_FPS),
    ],
)
def test_display_rate_is_reduced_over_x_forwarding(display, fps):
    assert default_max_fps(display) == fps
