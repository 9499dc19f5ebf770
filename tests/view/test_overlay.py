"""MBI field outlines from the crop table, WCS points from the camera keywords."""

from __future__ import annotations

import pytest

from vampires.camera.keywords import BenchState, camera_keywords
from vampires.camera.modes import ReadoutMode
from vampires.camera.table import load_camera_table
from vampires.view.overlay import FIELD_SIZE, mbi_outlines, wcs_points


def _keywords(camera: str, crop_name: str) -> tuple[dict, object]:
    table = load_camera_table(camera)
    crop = table.crop(crop_name)
    cards = camera_keywords(
        table,
        crop=crop,
        readout=ReadoutMode.FAST,
        tint=1e-3,
        fps=100.0,
        external_trigger=False,
        data_type="OBJECT",
        temperature=238.0,
        bench=BenchState(),
    )
    return {k: v for k, (v, _) in cards.items()}, crop


@pytest.mark.parametrize("camera", ["vcam1", "vcam2"])
def test_mbi_outlines_sit_on_the_hotspots(camera):
    keywords, crop = _keywords(camera, "MBI")
    fields = mbi_outlines(camera, keywords, crop.shape)
    assert {f.label for f in fields} == {"F610", "F670", "F720", "F760"}
    for field, spot in zip(fields, crop.hotspots, strict=True):
        assert field.label == spot.field
        assert field.cx == pytest.approx(spot.x - crop.x0 + 0.5)
        assert field.cy == pytest.approx(spot.y - crop.y0 + 0.5)
        assert 0 <= field.x0 < field.x1 <= crop.width
        assert 0 <= field.y0 < field.y1 <= crop.height
        assert field.x1 - field.x0 <= FIELD_SIZE


def test_mbi_reduced_has_three_fields_and_plain_crops_none():
    keywords, crop = _keywords("vcam1", "MBI_REDUCED")
    labels = [f.label for f in mbi_outlines("vcam1", keywords, crop.shape)]
    assert sorted(labels) == ["F670", "F720", "F760"]  # F610 is off this crop
    keywords, crop = _keywords("vcam1", "STANDARD")
    assert mbi_outlines("vcam1", keywords, crop.shape) == ()
    assert mbi_outlines("mystery", {"_CROP": "MBI"}, (100, 100)) == ()
    assert mbi_outlines("vcam1", {"_CROP": "NOSUCHCROP"}, (100, 100)) == ()


def test_outlines_follow_the_origin_really_read():
    keywords, crop = _keywords("vcam2", "MBI")
    moved = {**keywords, "PRD-MIN1": crop.x0 + 8}
    a = mbi_outlines("vcam2", keywords, crop.shape)[0]
    b = mbi_outlines("vcam2", moved, crop.shape)[0]
    assert b.cx == pytest.approx(a.cx - 8)


def test_wcs_points_are_the_defined_reference_pixels():
    keywords, crop = _keywords("vcam1", "MBI_REDUCED")
    points = wcs_points(keywords)
    assert [p.label for p in points] == ["F760", "F720", "F670"]  # F610 set is NA
    fields = {f.label: f for f in mbi_outlines("vcam1", keywords, crop.shape)}
    for point in points:
        assert point.x == pytest.approx(fields[point.label].cx - 0.5)
        assert point.y == pytest.approx(fields[point.label].cy - 0.5)
    keywords, _ = _keywords("vcam1", "STANDARD")
    assert [p.label for p in wcs_points(keywords)] == ["PRIMARY"]
    assert wcs_points({}) == ()
