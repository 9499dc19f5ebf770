from __future__ import annotations

import math

import attrs
import pytest

from vampires.camera.keywords import (
    MANAGED_KEYWORDS,
    BenchState,
    camera_keywords,
    check_keywords,
    frame_keywords,
    obs_mod,
    wcs_keywords,
)
from vampires.camera.modes import ReadoutMode
from vampires.camera.table import known_cameras, load_camera_table
from vampires.errors import KeywordError

REQUIRED = (
    "DETECTOR", "U_DETMOD", "EXPTIME", "FRATE", "MFRATE", "EXTTRIG", "DET-TMP",
    "DATA-TYP", "PRD-MIN1", "PRD-MIN2", "PRD-RNG1", "PRD-RNG2", "BIN-FCT1", "BIN-FCT2",
    "CROPPED", "DETPXSZ1", "DETPXSZ2", "BUNIT", "_FGSIZE1", "_FGSIZE2",
)  # fmt: skip


def _kw(camera="vcam1", crop="STANDARD", readout=ReadoutMode.FAST, **extra):
    table = load_camera_table(camera)
    args = {
        "crop": table.crop(crop), "readout": readout, "tint": 1e-3, "fps": 518.0,
        "external_trigger": False, "data_type": "OBJECT", "temperature": 238.15,
    }  # fmt: skip
    args.update(extra)
    return table, camera_keywords(table, **args)


def test_every_camera_crop_readout_fits_the_stream_limits():
    for cam in known_cameras():
        table = load_camera_table(cam)
        for crop in table.crops:
            for readout in table.readouts:
                _, kw = _kw(cam, crop, readout)
                check_keywords(kw)  # also done inside; explicit here
                for name in REQUIRED:
                    assert name in kw, (cam, crop, name)
                for name, (value, comment) in kw.items():
                    assert len(name) <= 16
                    assert len(comment) <= 80
                    if isinstance(value, str):
                        assert len(value) <= 16, (name, value)


def test_values_vcam1_standard():
    _, kw = _kw(external_trigger=True, measured_fps=517.9, crop_generation=3)
    v = {k: val for k, (val, _) in kw.items()}
    assert v["U_CAMERA"] == 1
    assert v["DETECTOR"] == "VCAM1 - OrcaQ"
    assert v["U_DETMOD"] == "FAST"
    assert v["EXPTIME"] == 1e-3
    assert v["EXTTRIG"] is True
    assert v["GAIN"] == pytest.approx(0.103)
    assert v["OBS-MOD"] == "IMAG"
    assert (v["PRD-MIN1"], v["PRD-MIN2"], v["PRD-RNG1"], v["PRD-RNG2"]) == (1780, 884, 536, 536)
    assert v["CROPPED"] is True
    assert v["DETPXSZ1"] == pytest.approx(0.0046)
    assert v["INST-PA"] == pytest.approx(-38.90)
    assert v["BUNIT"] == "adu"
    assert v["MFRATE"] == pytest.approx(517.9)
    assert v["_CROPGEN"] == 3
    assert v["WCSNAME"] == "PRIMARY"
    assert v["WCSNAMEB"] == v["WCSNAMEC"] == v["WCSNAMED"] == "NA"
    assert v["CRPIX1"] == pytest.approx(268.5)
    _, kw_full = _kw(crop="FULL")
    assert kw_full["CROPPED"][0] is False


def test_slow_gain_and_halfarc_header_says_what_is_read():
    _, kw = _kw(crop="HALFARC", readout=ReadoutMode.SLOW)
    assert kw["GAIN"][0] == pytest.approx(0.105)
    assert kw["U_DETMOD"][0] == "SLOW"
    assert (kw["PRD-MIN1"][0], kw["PRD-MIN2"][0]) == (1912, 1016)


def test_mbi_wcs_sets():
    table, kw = _kw(crop="MBI")
    v = {k: val for k, (val, _) in kw.items()}
    assert v["OBS-MOD"] == "IMAG_MBI"
    assert [v[f"WCSNAME{s}"] for s in ("", "B", "C", "D")] == ["F760", "F720", "F670", "F610"]
    crop = table.crop("MBI")
    f760 = next(h for h in crop.hotspots if h.field == "F760")
    assert v["CRPIX1"] == pytest.approx(f760.x - crop.x0 + 0.5)
    assert v["CRPIX2"] == pytest.approx(f760.y - crop.y0 + 0.5)
    # full double precision kept (not %20.8f): ~1.64e-6 deg with many digits
    scale = 5.908 / 3.6e6
    assert v["CDELT1"] == -scale
    assert v["CDELT2"] == -scale
    theta = math.radians(-38.90)
    assert v["CD1_1"] == pytest.approx(-scale * math.cos(theta), rel=1e-12)
    assert v["CD1_2"] == pytest.approx(scale * math.sin(theta), rel=1e-12)
    assert abs(v["CD1_1"]) > 1e-6
    assert f"{v['CD2_1']:.10e}" != f"{round(v['CD2_1'], 8):.10e}"


def test_mbir_names_f610_na_and_cam2_signs():
    _, kw = _kw(crop="MBI_REDUCED")
    assert kw["OBS-MOD"][0] == "IMAG_MBIR"
    assert kw["WCSNAMED"][0] == "NA"
    assert kw["WCSNAME"][0] == "F760"
    _, kw2 = _kw("vcam2", "MBI")
    assert kw2["CDELT1"][0] < 0 < kw2["CDELT2"][0]
    _, kw2r = _kw("vcam2", "MBI_REDUCED")
    assert kw2r["WCSNAMED"][0] == "NA"


def test_wcs_rotation_includes_imr_pad():
    table = load_camera_table("vcam2")
    crop = table.crop("STANDARD")
    a = wcs_keywords(table, crop, BenchState())
    b = wcs_keywords(table, crop, BenchState(imr_pad=38.58))
    assert a["CD1_2"][0] != 0
    assert b["CD1_2"][0] == pytest.approx(0, abs=1e-20)


def test_vpupcam_has_no_wcs_and_detgain():
    _, kw = _kw("vpupcam", "CROP_VPUP")
    assert "WCSNAME" not in kw
    assert "U_CAMERA" not in kw
    assert "DETGAIN" in kw
    assert kw["DETECTOR"][0] == "VAMPIRES PUPCAM"


@pytest.mark.parametrize(
    ("bench", "crop", "expected"),
    [
        (BenchState(), "STANDARD", "IMAG"),
        (BenchState(beamsplitter="PBS", hwp_stage=56.3), "STANDARD", "IPOL"),
        (BenchState(beamsplitter="PBS", polarizer_stage=55.0), "MBI", "IPOL_MBI"),
        (BenchState(beamsplitter="PBS", polarizer_stage=90.5), "MBI_REDUCED", "IPOL_MBIR"),
        (BenchState(beamsplitter="PBS", scexao_polarizer="in"), "STANDARD", "IPOL"),
        (BenchState(beamsplitter="NPBS", hwp_stage=56.0), "STANDARD", "IMAG"),
        (BenchState(beamsplitter="PBS", hwp_stage=10.0), "STANDARD", "IMAG"),
        (BenchState(diff_filter1="SII-Cont", diff_filter2="SII"), "MBI", "IMAG_SDI"),
        (BenchState(diff_filter1="SII", diff_filter2="Open"), "MBI", "IMAG_MBI"),
        (BenchState(diff_filter1="Block", diff_filter2="Ha"), "STANDARD", "IMAG"),
        (BenchState(pupil_lens=True), "PUPIL", "IMAG_PUP"),
        (BenchState(pupil_lens=True), "MBI", "IMAG_MBI"),
    ],
)
def test_obs_mod(bench, crop, expected):
    assert obs_mod(crop, bench) == expected


def test_user_keywords_and_limits():
    _, kw = _kw(user={"OBSERVER": "scexao", "U_AQNCUB": 3})
    assert kw["OBSERVER"] == ("scexao", "User keyword")
    with pytest.raises(KeywordError, match="managed by the camera"):
        _kw(user={"EXPTIME": 1.0})
    # the stream's limits (15/15/79 + NUL), not 16/16/80 (issue 13 item 4)
    check_keywords({"ABCDEFGHIJKLMNO": ("A" * 15, "c" * 79)})
    with pytest.raises(KeywordError, match="the limit is 15"):
        check_keywords({"OBJECT": "A" * 16})
    with pytest.raises(KeywordError, match="the limit is 15"):
        check_keywords({"ABCDEFGHIJKLMNOP": 1})
    with pytest.raises(KeywordError, match="without spaces"):
        check_keywords({"A B": 1})
    with pytest.raises(KeywordError, match="the limit is 79"):
        check_keywords({"X": (1, "c" * 80)})
    with pytest.raises(KeywordError, match="finite"):
        check_keywords({"X": float("nan")})
    with pytest.raises(KeywordError, match="int, float, str or bool"):
        check_keywords({"X": [1]})
    with pytest.raises(KeywordError, match="comment"):
        check_keywords({"X": (1, "c" * 81)})
    assert "DATA-TYP" in MANAGED_KEYWORDS
    assert "CD2_2D" in MANAGED_KEYWORDS


def test_frame_keywords():
    kw = frame_keywords(1_700_000_000.123456, 250.0)
    assert kw["_MAQTIME"] == 1_700_000_000_123_456
    assert kw["MFRATE"] == 250.0


def test_bench_is_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        BenchState().hwp_stage = 1.0  # type: ignore[misc]
