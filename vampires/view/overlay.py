"""Where the MBI fields are on a frame: outlines from the crop table, WCS points from keywords.

A frame of an MBI crop (``MBI``, ``MBI_REDUCED``, ``MBI_ONEHALF`` ...) holds up
to four fields. Their centres are the camera table's hotspots (sensor
coordinates, ``vampires/camera/data/<camera>.toml``) minus the crop origin;
each field is the square image of the field stop, :data:`FIELD_SIZE` pixels
wide (the crops are made by padding each hotspot by half of it). The WCS sets
the camera writes (``WCSNAME``/``CRPIX1``/``CRPIX2`` with suffixes ``""``,
``B``, ``C``, ``D``) give the reference point of each field where defined.

Coordinates here are display coordinates of the full-resolution frame:
pixel ``(x, y)`` (0-based column, row) covers ``[x, x + 1) x [y, y + 1)``, so
a 0-based pixel centre is at ``x + 0.5`` and a FITS ``CRPIX`` at ``CRPIX - 0.5``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs

from vampires.errors import ConfigError

__all__ = ["FIELD_SIZE", "FieldOutline", "WcsPoint", "mbi_outlines", "wcs_points"]

logger = logging.getLogger(__name__)

#: Side of one MBI field (the field stop's image), pixels.
FIELD_SIZE = 536


@attrs.frozen(kw_only=True)
class FieldOutline:
    """One MBI field on the frame (display coordinates, see the module docstring).

    Attributes
    ----------
    label
        Field name (``F610`` ... ``F760``).
    cx, cy
        Centre (the hotspot).
    x0, y0, x1, y1
        The field square, clipped to the frame.
    """

    label: str
    cx: float
    cy: float
    x0: float
    y0: float
    x1: float
    y1: float


@attrs.frozen(kw_only=True)
class WcsPoint:
    """A WCS reference point the stream keywords define (display coordinates).

    Attributes
    ----------
    label
        ``WCSNAME`` of the set (a field name, or ``PRIMARY``).
    x, y
        ``CRPIX1 - 0.5``, ``CRPIX2 - 0.5``.
    """

    label: str
    x: float
    y: float


def _camera_of(stream: str, keywords: Mapping[str, Any]) -> str | None:
    number = keywords.get("U_CAMERA")
    if isinstance(number, int) and not isinstance(number, bool) and number in (1, 2):
        return f"vcam{number}"
    for name in ("vcam1", "vcam2"):
        if stream.startswith(name):
            return name
    return None


def mbi_outlines(
    stream: str,
    keywords: Mapping[str, Any],
    frame_shape: tuple[int, int],
    *,
    field_size: int = FIELD_SIZE,
) -> tuple[FieldOutline, ...]:
    """Outlines of the MBI fields of a frame, from the camera's crop table.

    Parameters
    ----------
    stream
        Stream name (``vcam1``...), used when ``U_CAMERA`` is missing.
    keywords
        Stream keywords: ``_CROP`` (crop name), ``PRD-MIN1``/``PRD-MIN2``
        (the origin really read; the table's when missing), ``U_CAMERA``.
    frame_shape
        ``(height, width)`` of the frame.
    field_size
        Side of a field, pixels.

    Returns
    -------
    tuple of FieldOutline
        Empty outside MBI crops, for unknown cameras or crops, and for
        fields whose hotspot is off the frame (F610 in MBI_REDUCED).
    """
    from vampires.camera.table import load_camera_table

    camera = _camera_of(stream, keywords)
    crop_name = keywords.get("_CROP")
    if camera is None or not isinstance(crop_name, str) or not crop_name:
        return ()
    try:
        crop = load_camera_table(camera).crops.get(crop_name)
    except ConfigError as exc:
        logger.warning("view %s: no crop table for %s: %s", stream, camera, exc)
        return ()
    if crop is None or not crop.hotspots:
        return ()
    x_origin = keywords.get("PRD-MIN1", crop.x0)
    y_origin = keywords.get("PRD-MIN2", crop.y0)
    if not isinstance(x_origin, int | float) or not isinstance(y_origin, int | float):
        x_origin, y_origin = crop.x0, crop.y0
    height, width = frame_shape
    half = field_size / 2.0
    out = []
    for spot in crop.hotspots:
        cx = spot.x - float(x_origin) + 0.5
        cy = spot.y - float(y_origin) + 0.5
        if not (0.0 <= cx < width and 0.0 <= cy < height):
            continue
        out.append(
            FieldOutline(
                label=spot.field,
                cx=cx,
                cy=cy,
                x0=max(0.0, cx - half),
                y0=max(0.0, cy - half),
                x1=min(float(width), cx + half),
                y1=min(float(height), cy + half),
            )
        )
    return tuple(out)


def wcs_points(keywords: Mapping[str, Any]) -> tuple[WcsPoint, ...]:
    """WCS reference points the keywords define (sets whose ``WCSNAME`` is not ``NA``).

    Parameters
    ----------
    keywords
        Stream keywords.

    Returns
    -------
    tuple of WcsPoint
    """
    from vampires.camera.keywords import WCS_SUFFIXES

    out = []
    for suffix in WCS_SUFFIXES:
        name = keywords.get(f"WCSNAME{suffix}")
        x, y = keywords.get(f"CRPIX1{suffix}"), keywords.get(f"CRPIX2{suffix}")
        if not isinstance(name, str) or name in ("", "NA"):
            continue
        if not isinstance(x, int | float) or not isinstance(y, int | float):
            continue
        out.append(WcsPoint(label=name, x=float(x) - 0.5, y=float(y) - 0.5))
    return tuple(out)
