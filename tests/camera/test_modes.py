from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vampires.camera.modes import (
    DATA_TYPES,
    CropMode,
    Hotspot,
    ReadoutMode,
    frame_rate,
    parse_data_type,
    parse_readout_mode,
    readout_time,
)
from vampires.camera.table import known_cameras, load_camera_table
from vampires.config import Config
from vampires.errors import ConfigError

# (camera, crop) -> (x0, y0, width, height) from the reference tables (section 1.3)
REFERENCE = {
    ("vcam1", "FULL"): (0, 0, 4096, 2304),
    ("vcam1", "STANDARD"): (1780, 884, 536, 536),
    ("vcam1", "NPBS"): (1780, 884, 536, 536),
    ("vcam2", "NPBS"): (1700, 816, 536, 536),
    ("vcam1", "TWOARC"): (1868, 972, 360, 360),
    ("vcam2", "ONEARC"): (1956, 1060, 184, 184),
    ("vcam1", "HALFARC"): (1914, 1018, 268, 268),
    ("vcam1", "MBI"): (920, 596, 2236, 1096),
    ("vcam2", "MBI"): (916, 692, 2240, 1096),
    ("vcam1", "MBI_REDUCED"): (924, 1152, 2232, 540),
    ("vcam2", "MBI_REDUCED"): (928, 692, 2228, 552),
    ("vcam1", "MBI_ONEHALF"): (1124, 1328, 1888, 220),
    ("vcam2", "MBI_ONEHALF"): (1128, 744, 1888, 236),
    ("vcam1", "PUPIL"): (1604, 704, 888, 892),
    ("vcam2", "PUPIL"): (1648, 772, 760, 760),
    ("vpupcam", "CROP_VPUP"): (444, 310, 512, 512),
    ("vpupcam", "FULL"): (0, 0, 1328, 1048),
}


def test_known_cameras():
    assert set(known_cameras()) >= {"vcam1", "vcam2", "vpupcam"}


@pytest.mark.parametrize(("camera", "crop"), sorted(REFERENCE))
def test_crop_tables_match_reference(camera, crop):
    mode = load_camera_table(camera).crops[crop]
    assert (mode.x0, mode.y0, mode.width, mode.height) == REFERENCE[(camera, crop)]


def test_every_orca_crop_present_and_rates():
    for cam in ("vcam1", "vcam2"):
        table = load_camera_table(cam)
        names = {"FULL", "STANDARD", "NPBS", "TWOARC", "ONEARC", "HALFARC", "MBI",
                 "MBI_REDUCED", "MBI_ONEHALF", "PUPIL"}  # fmt: skip
        assert names <= set(table.crops)
        std = table.crop("STANDARD")
        # reference section 1.4: ~518 fps FAST, ~21.6 SLOW, 1/24 ratio
        assert table.max_fps(std, "FAST") == pytest.approx(518.2, abs=0.1)
        assert table.max_fps(std, "SLOW") == pytest.approx(518.2 / 24, abs=0.01)
        assert table.max_fps(table.crop("MBI"), "FAST") == pytest.approx(253.4, abs=0.1)
        assert table.max_fps(table.crop("FULL"), "FAST") == pytest.approx(120.6, abs=0.1)
    t1, t2 = load_camera_table("vcam1"), load_camera_table("vcam2")
    assert t1.max_fps(t1.crop("MBI_REDUCED"), ReadoutMode.FAST) == pytest.approx(514, abs=1)
    assert t2.max_fps(t2.crop("MBI_REDUCED"), ReadoutMode.FAST) == pytest.approx(503, abs=1)


def test_table_values():
    t1 = load_camera_table("vcam1")
    assert t1.readout("FAST").line_time == pytest.approx(7.2e-6)
    assert t1.readout("SLOW").line_time == pytest.approx(172.8e-6)
    assert t1.readout("FAST").gain == pytest.approx(0.103)
    assert t1.readout("SLOW").gain == pytest.approx(0.105)
    assert t1.readout("FAST").read_noise == pytest.approx(0.403)
    assert t1.pixel_pitch_mm == pytest.approx(0.0046)
    assert t1.inst_pa == pytest.approx(-38.90)
    assert t1.plate_scale_mas == pytest.approx(5.908)
    assert {h.field for h in t1.crops["MBI"].hotspots} == {"F610", "F670", "F720", "F760"}
    f610 = next(h for h in t1.hotspots if h.field == "F610")
    assert (f610.x, f610.y) == (1188.9, 867.8)
    t2 = load_camera_table("vcam2")
    assert t2.inst_pa == pytest.approx(-38.58)
    assert t2.readout("SLOW").read_noise == pytest.approx(0.220)
    vp = load_camera_table("vpupcam")
    crop = vp.crops["CROP_VPUP"]
    assert crop.fps == 30.0
    assert crop.tint == pytest.approx(0.03)
    assert vp.default_crop == "CROP_VPUP"
    assert not vp.exposure_sets_rate


def test_halfarc_warns_when_used_and_snaps(caplog):
    # issue 13 item 11: warned at every table load (every Camera()), not when chosen
    with caplog.at_level(logging.WARNING, logger="vampires.camera.table"):
        table = load_camera_table("vcam1")
    assert not any("HALFARC" in r.getMessage() for r in caplog.records)
    raw = table.crops["HALFARC"]
    assert not raw.is_aligned(4)
    with caplog.at_level(logging.WARNING, logger="vampires.camera.table"):
        real = table.crop("HALFARC")
    assert any("HALFARC" in r.getMessage() for r in caplog.records)
    assert (real.x0, real.y0, real.width, real.height) == (1912, 1016, 268, 268)
    assert real.is_aligned(4)
    # aligned crops come back as they are
    assert table.crop("STANDARD") is table.crops["STANDARD"]


def test_snapped_keeps_inside_sensor():
    crop = CropMode(name="EDGE", x0=4093, y0=2301, width=3, height=3)
    snapped = crop.snapped(4, (4096, 2304))
    assert snapped.is_aligned(4)
    assert snapped.x0 + snapped.width <= 4096
    assert snapped.y0 + snapped.height <= 2304


def test_crop_lookup_case_insensitive_and_unknown():
    table = load_camera_table("vcam1")
    assert table.crop("mbi").name == "MBI"
    with pytest.raises(ConfigError, match=r"unknown crop 'MBI_JEWEL'.*known crops"):
        table.crop("MBI_JEWEL")
    with pytest.raises(ConfigError, match="does not fit"):
        table.crop(CropMode(name="BIG", x0=4000, y0=0, width=200, height=100))
    with pytest.raises(ConfigError, match="name or a CropMode"):
        table.crop(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x0": -4}, "'x0' must be >= 0"),
        ({"width": 0}, "'width' must be > 0"),
        ({"height": 2.5}, "'height' must be an integer"),
        ({"name": ""}, "crop name"),
        ({"name": "X" * 17}, "crop name"),
        ({"tint": -1.0}, "'tint' must be > 0"),
        ({"scene": "galaxy"}, "scene"),
    ],
)
def test_cropmode_validation(kwargs, match):
    base = {"name": "C", "x0": 0, "y0": 0, "width": 8, "height": 8}
    with pytest.raises((ConfigError, ValueError), match=match):
        CropMode(**{**base, **kwargs})


def test_cropmode_roundtrip_and_props():
    crop = CropMode(
        name="MBI", x0=920, y0=596, width=2236, height=1096,
        hotspots=(Hotspot(field="F610", x=1188.9, y=867.8),), tint=1e-3,
    )  # fmt: skip
    assert CropMode.from_dict(crop.to_dict()) == crop
    assert crop.shape == (1096, 2236)
    assert crop.x1 == 3155
    assert crop.y1 == 1691
    assert crop.nbytes() == 4_901_312
    with pytest.raises(ConfigError, match="missing"):
        CropMode.from_dict({"name": "X", "x0": 0})
    with pytest.raises(ConfigError, match="mapping"):
        CropMode.from_dict("STANDARD")


def test_parse_readout_mode():
    assert parse_readout_mode("fast") is ReadoutMode.FAST
    assert parse_readout_mode(" SLOW ") is ReadoutMode.SLOW
    assert parse_readout_mode(ReadoutMode.SLOW) is ReadoutMode.SLOW
    for bad in ("ULTRA", 1, None):
        with pytest.raises(ConfigError, match="must be one of FAST, SLOW"):
            parse_readout_mode(bad)
    with pytest.raises(ConfigError, match="not available"):
        load_camera_table("vpupcam").readout("SLOW")


def test_data_types():
    assert parse_data_type("object") == "OBJECT"
    assert "ACQUISITION" in DATA_TYPES
    assert len(DATA_TYPES) == 11
    with pytest.raises(ConfigError, match="data type must be one of"):
        parse_data_type("SCIENCE")


def test_timing_functions():
    assert readout_time(536, 7.2e-6, 2) == pytest.approx(268 * 7.2e-6)
    assert readout_time(537, 7.2e-6, 2) == pytest.approx(269 * 7.2e-6)
    ro = 1.9296e-3
    assert frame_rate(1e-3, ro) == pytest.approx(1 / ro)
    assert frame_rate(5e-3, ro) == pytest.approx(200)
    assert frame_rate(1e-3, ro, external=True) == pytest.approx(1 / (1e-3 + ro))


def test_check_tint_and_fps():
    table = load_camera_table("vcam1")
    std = table.crop("STANDARD")
    assert table.check_fps(500, std, "FAST") == 500.0
    with pytest.raises(ConfigError, match=r"above the maximum 518\.\d+ Hz of crop STANDARD"):
        table.check_fps(600, std, "FAST")
    for bad in (0, -1, float("nan"), "fast", True):
        with pytest.raises(ConfigError):
            table.check_fps(bad, std, "FAST")
    assert table.check_tint(1e-3) == 1e-3
    for bad in (0.0, 1e-7, 4000.0, "1", None, float("inf")):
        with pytest.raises(ConfigError, match="exposure time"):
            table.check_tint(bad)


def test_site_overrides(tmp_path: Path):
    site = tmp_path / "site.toml"
    site.write_text(
        "[crops.MBI_JEWEL]\nx0 = 1000\ny0 = 700\nwidth = 2000\nheight = 1000\nhotspots = true\n"
        "[hotspots]\nF610 = [1190.0, 870.0]\n"
    )
    table = load_camera_table("vcam1", site=site)
    jewel = table.crop("MBI_JEWEL")
    assert jewel.width == 2000
    assert any(h.field == "F610" and h.x == 1190.0 for h in jewel.hotspots)
    assert "STANDARD" in table.crops  # package crops kept
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text("[crops.vcam2.DARKS]\nx0 = 0\ny0 = 0\nwidth = 64\nheight = 64\n")
    cfg = Config.load(path=cfg_file)
    assert load_camera_table("vcam2", config=cfg).crop("DARKS").width == 64
    # the package table itself is untouched
    assert "DARKS" not in load_camera_table("vcam2").crops


def test_bad_tables(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown camera"):
        load_camera_table("vcam3")
    with pytest.raises(ConfigError, match="invalid camera name"):
        load_camera_table("../etc")
    with pytest.raises(ConfigError, match="not found"):
        load_camera_table("vcam1", site=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[crops.OOPS]\nx0 = 4000\ny0 = 0\nwidth = 200\nheight = 8\n")
    with pytest.raises(ConfigError, match="OOPS"):
        load_camera_table("vcam1", site=bad)
    bad.write_text("[crops.OOPS]\nx0 = 0\ny0 = 0\nwidth = 'wide'\nheight = 8\n")
    with pytest.raises(ConfigError, match="'width' must be an integer"):
        load_camera_table("vcam1", site=bad)
    bad.write_text("not toml ===")
    with pytest.raises(ConfigError, match="cannot read"):
        load_camera_table("vcam1", site=bad)


def test_max_fps_with_exposure():
    table = load_camera_table("vcam1")
    std = table.crop("STANDARD")
    ro = table.readout_time(std, "FAST")
    assert table.max_fps(std, "FAST", tint=1e-3) == pytest.approx(1 / ro)
    assert table.max_fps(std, "FAST", tint=1e-2) == pytest.approx(100.0)
    assert table.max_fps(std, "FAST", tint=1e-3, external=True) == pytest.approx(1 / (1e-3 + ro))
