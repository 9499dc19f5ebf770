"""Crop and readout modes, data types and the timing model (values, no I/O).

The per-camera tables these values come from (TOML schema, loading, site
overrides) are in :mod:`vampires.camera.table`.

Timing model (ORCA-Quest rolling shutter, reference section 1.2): a crop of
``height`` rows reads out in ``ceil(height / rows_per_line) * line_time``
(two rows per line time; 1H = 7.2 us FAST, 172.8 us SLOW). With internal
trigger the frame rate is ``1 / max(tint, readout)``; with external
(edge) trigger the fastest trigger rate is ``1 / (tint + readout)``.

Alignment: ORCA-Quest subarray origins and sizes are multiples of 4. A crop
that is not (HALFARC's origin in the tables) is reported with a warning when
a camera selects it (not at every table load) and used *snapped*
(:meth:`CropMode.snapped`: origin rounded down,
size rounded up, kept inside the sensor); the header's ``PRD-*`` keywords
describe the snapped crop, i.e. the pixels really read.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from vampires.errors import ConfigError
from vampires.stream.layout import KEYWORD_STRING_MAX

__all__ = [
    "DATA_TYPES",
    "CropMode",
    "Hotspot",
    "ReadoutMode",
    "frame_rate",
    "parse_data_type",
    "parse_readout_mode",
    "readout_time",
]

logger = logging.getLogger(__name__)

#: Subaru data types accepted for ``DATA-TYP`` (vampires_datatype, preplog).
DATA_TYPES = (
    "ACQUISITION",
    "BIAS",
    "COMPARISON",
    "DARK",
    "DOMEFLAT",
    "FLAT",
    "FOCUSING",
    "OBJECT",
    "SKYFLAT",
    "STANDARD",
    "TEST",
)

#: A crop name is written to the stream as the string keyword ``_CROP``.
_NAME_MAX = KEYWORD_STRING_MAX


class ReadoutMode(enum.StrEnum):
    """Detector readout mode (``U_DETMOD``).

    FAST is the ORCA-Quest "standard scan" (1H = 7.2 us), SLOW its
    "ultra quiet" scan (1H = 172.8 us, lower read noise).
    """

    FAST = "FAST"
    SLOW = "SLOW"


def parse_readout_mode(obj: object) -> ReadoutMode:
    """Turn anything from argv, JSON or TOML into a :class:`ReadoutMode`.

    Parameters
    ----------
    obj
        A ReadoutMode or a string, case-insensitive (``"fast"``, ``"SLOW"``).

    Returns
    -------
    ReadoutMode

    Raises
    ------
    ConfigError
        Not one of FAST, SLOW.
    """
    if isinstance(obj, ReadoutMode):
        return obj
    if isinstance(obj, str) and obj.strip().upper() in ReadoutMode.__members__:
        return ReadoutMode[obj.strip().upper()]
    msg = f"readout mode must be one of FAST, SLOW. Got {obj!r}"
    raise ConfigError(msg)


def parse_data_type(obj: object) -> str:
    """Validate a Subaru data type (``DATA-TYP``), case-insensitive.

    Parameters
    ----------
    obj
        A string such as ``"object"`` or ``"DARK"``.

    Returns
    -------
    str
        The upper-case data type.

    Raises
    ------
    ConfigError
        Not in :data:`DATA_TYPES`.
    """
    if isinstance(obj, str) and obj.strip().upper() in DATA_TYPES:
        return obj.strip().upper()
    msg = f"data type must be one of {', '.join(DATA_TYPES)}. Got {obj!r}"
    raise ConfigError(msg)


def readout_time(height: int, line_time: float, rows_per_line: int = 2) -> float:
    """Readout time of a crop from the row model.

    Parameters
    ----------
    height
        Rows in the crop.
    line_time
        Line (1H) time [s].
    rows_per_line
        Rows read per line time (2 for the ORCA-Quest).

    Returns
    -------
    float
        ``ceil(height / rows_per_line) * line_time`` [s].
    """
    return math.ceil(height / rows_per_line) * line_time


def frame_rate(tint: float, readout: float, *, external: bool = False) -> float:
    """Frame rate for an exposure and a readout time.

    Parameters
    ----------
    tint
        Exposure time [s].
    readout
        Readout time of the crop [s].
    external
        External (edge) trigger: exposure and readout do not overlap.

    Returns
    -------
    float
        ``1 / max(tint, readout)`` (internal) or ``1 / (tint + readout)``
        (external: the fastest trigger rate the camera accepts) [Hz].
    """
    period = tint + readout if external else max(tint, readout)
    return 1.0 / period


def _int_field(name: str, *, positive: bool) -> Any:  # noqa: ANN401 - attrs field factory
    def check(inst: object, attr: attrs.Attribute[int], value: object) -> None:
        crop = getattr(inst, "name", "?")
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"crop {crop!r}: {name!r} must be an integer (got {value!r})"
            raise ConfigError(msg)
        if value < (1 if positive else 0):
            rule = "> 0" if positive else ">= 0"
            msg = f"crop {crop!r}: {name!r} must be {rule} (got {value})"
            raise ConfigError(msg)

    return attrs.field(validator=check)


def _check_name(inst: object, attr: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > _NAME_MAX or not value.isascii():
        msg = f"crop name must be 1-{_NAME_MAX} ASCII characters (got {value!r})"
        raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class Hotspot:
    """Centre of one MBI field's PSF, in absolute sensor coordinates.

    Attributes
    ----------
    field
        Field name (``F610``, ``F670``, ``F720``, ``F760``).
    x, y
        Sensor column and row (0-based, sub-pixel).
    """

    field: str
    x: float = attrs.field(converter=float)
    y: float = attrs.field(converter=float)


def _opt_positive_float(inst: object, attr: attrs.Attribute[float | None], v: object) -> None:
    if v is not None and not (isinstance(v, float) and v > 0 and math.isfinite(v)):
        msg = f"crop {getattr(inst, 'name', '?')!r}: {attr.name!r} must be > 0 (got {v!r})"
        raise ConfigError(msg)


def _opt_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"must be a number (got {value!r})"
        raise ConfigError(msg)
    return float(value)


def _to_hotspots(value: Iterable[object]) -> tuple[Hotspot, ...]:
    spots = tuple(value)
    for spot in spots:
        if not isinstance(spot, Hotspot):
            msg = f"hotspots must be Hotspot values (got {spot!r})"
            raise ConfigError(msg)
    return spots  # type: ignore[return-value]  # checked above


@attrs.frozen(kw_only=True)
class CropMode:
    """A named crop (subarray) of a sensor.

    Attributes
    ----------
    name
        Mode name (``STANDARD``, ``MBI`` ...), at most 15 characters (a stream string keyword).
    x0, y0
        Origin: first column and row, 0-based full-sensor pixels.
    width, height
        Size in pixels (NAXIS1, NAXIS2); numpy shape is ``(height, width)``.
    hotspots
        MBI field centres in sensor coordinates (empty outside MBI crops).
    tint
        Default exposure [s] when the camera starts in this crop, or None.
    fps
        Default frame rate [Hz] for cameras whose rate is set apart from the
        exposure (vpupcam), or None.
    scene
        What the simulator shows: ``"psf"`` (default) or ``"pupil"``.

    Examples
    --------
    >>> crop = CropMode(name="HALFARC", x0=1914, y0=1018, width=268, height=268)
    >>> crop.snapped(4).x0, crop.snapped(4).y0
    (1912, 1016)
    """

    name: str = attrs.field(validator=_check_name)
    x0: int = _int_field("x0", positive=False)
    y0: int = _int_field("y0", positive=False)
    width: int = _int_field("width", positive=True)
    height: int = _int_field("height", positive=True)
    hotspots: tuple[Hotspot, ...] = attrs.field(default=(), converter=_to_hotspots)
    tint: float | None = attrs.field(
        default=None, converter=_opt_float, validator=_opt_positive_float
    )
    fps: float | None = attrs.field(
        default=None, converter=_opt_float, validator=_opt_positive_float
    )
    scene: str = attrs.field(default="psf", validator=attrs.validators.in_(("psf", "pupil")))

    @property
    def x1(self) -> int:
        """Last column (inclusive)."""
        return self.x0 + self.width - 1

    @property
    def y1(self) -> int:
        """Last row (inclusive)."""
        return self.y0 + self.height - 1

    @property
    def shape(self) -> tuple[int, int]:
        """Numpy shape of a frame, ``(height, width)``."""
        return (self.height, self.width)

    def nbytes(self, itemsize: int = 2) -> int:
        """Bytes per frame for ``itemsize``-byte pixels (2 for uint16)."""
        return self.width * self.height * itemsize

    def is_aligned(self, alignment: int) -> bool:
        """Tell whether origin and size are multiples of ``alignment``."""
        return all(v % alignment == 0 for v in (self.x0, self.y0, self.width, self.height))

    def snapped(self, alignment: int = 4, sensor: tuple[int, int] | None = None) -> CropMode:
        """Return the crop the camera really reads.

        Parameters
        ----------
        alignment
            Step of origin and size (4 for the ORCA-Quest).
        sensor
            ``(width, height)`` of the sensor: the snapped crop is shifted back
            inside it if rounding the size up pushed it past the edge.

        Returns
        -------
        CropMode
            Origin rounded down and size rounded up to multiples of
            ``alignment`` (``self`` when already aligned).
        """
        if self.is_aligned(alignment):
            return self
        x0 = self.x0 - self.x0 % alignment
        y0 = self.y0 - self.y0 % alignment
        width = -(-(self.x0 + self.width - x0) // alignment) * alignment
        height = -(-(self.y0 + self.height - y0) // alignment) * alignment
        # keep the requested size when only the origin was off (HALFARC)
        if self.width % alignment == 0 and self.x0 % alignment:
            width = self.width
        if self.height % alignment == 0 and self.y0 % alignment:
            height = self.height
        if sensor is not None:
            x0 = max(0, min(x0, sensor[0] - width))
            y0 = max(0, min(y0, sensor[1] - height))
        return attrs.evolve(self, x0=x0, y0=y0, width=width, height=height)

    def contains(self, x: float, y: float) -> bool:
        """Tell whether sensor point ``(x, y)`` falls inside the crop."""
        return self.x0 <= x < self.x0 + self.width and self.y0 <= y < self.y0 + self.height

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (inverse of :meth:`from_dict`)."""
        return {
            "name": self.name,
            "x0": self.x0,
            "y0": self.y0,
            "width": self.width,
            "height": self.height,
            "hotspots": [[h.field, h.x, h.y] for h in self.hotspots],
            "tint": self.tint,
            "fps": self.fps,
            "scene": self.scene,
        }

    @classmethod
    def from_dict(cls, data: object) -> CropMode:
        """Build a crop from :meth:`to_dict` output (e.g. a JSON command).

        Raises
        ------
        ConfigError
            Missing or invalid fields.
        """
        if not isinstance(data, Mapping):
            msg = f"a crop must be a mapping with name, x0, y0, width, height (got {data!r})"
            raise ConfigError(msg)
        missing = [k for k in ("name", "x0", "y0", "width", "height") if k not in data]
        if missing:
            msg = f"crop {data.get('name', '?')!r}: missing {', '.join(missing)}"
            raise ConfigError(msg)
        try:
            hotspots = tuple(
                Hotspot(field=str(h[0]), x=h[1], y=h[2]) for h in data.get("hotspots", ())
            )
            return cls(
                name=data["name"],
                x0=data["x0"],
                y0=data["y0"],
                width=data["width"],
                height=data["height"],
                hotspots=hotspots,
                tint=data.get("tint"),
                fps=data.get("fps"),
                scene=data.get("scene", "psf"),
            )
        except (TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            msg = f"crop {data.get('name', '?')!r}: invalid value ({exc})"
            raise ConfigError(msg) from exc
