"""From a frame to the RGB pixels on screen: dark, binning, limits, stretch, colours.

Qt-free and display-free, so every step is tested on arrays. The per-pixel
work is two numba kernels (:mod:`vampires.view._jit`, imported on the first
render) writing into buffers kept between frames:

1. ``reduce_frame``: ``frame - dark`` binned (block mean) or decimated (one
   pixel per block) by ``factor``, and a saturation mask (any raw pixel of the
   block at or above the saturation level);
2. limits: the ``percentiles`` of a strided sample of at most
   :data:`LIMIT_SAMPLE` pixels of the reduced image, or manual ``(lo, hi)``;
3. ``colourise``: ``t = (v - lo) / (hi - lo)`` through a lookup table that
   folds the stretch (linear, sqrt, log, asinh) into the colour map
   (:data:`LUT_SIZE` entries), saturated pixels in :data:`SATURATION_RGB`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vampires._checks import check_int
from vampires.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "COLORMAPS",
    "LIMIT_SAMPLE",
    "LUT_SIZE",
    "SATURATION_RGB",
    "STRETCHES",
    "RenderSettings",
    "Rendered",
    "Renderer",
    "auto_factor",
    "lookup_table",
]

#: Stretches, in the order the ``s`` key cycles through them.
STRETCHES = ("linear", "sqrt", "log", "asinh")
#: Colour maps as anchor colours (position 0..1, r, g, b), interpolated linearly.
COLORMAPS: Mapping[str, tuple[tuple[float, int, int, int], ...]] = MappingProxyType(
    {
        "grey": ((0.0, 0, 0, 0), (1.0, 255, 255, 255)),
        "heat": ((0.0, 0, 0, 0), (1 / 3, 255, 0, 0), (2 / 3, 255, 255, 0), (1.0, 255, 255, 255)),
        "viridis": (
            (0.0, 68, 1, 84),
            (0.25, 59, 82, 139),
            (0.5, 33, 145, 140),
            (0.75, 94, 201, 98),
            (1.0, 253, 231, 37),
        ),
        "inferno": (
            (0.0, 0, 0, 4),
            (0.25, 87, 16, 110),
            (0.5, 188, 55, 84),
            (0.75, 249, 142, 9),
            (1.0, 252, 255, 164),
        ),
        "cool": ((0.0, 0, 255, 255), (1.0, 255, 0, 255)),
    }
)
#: Entries of the stretch + colour lookup table.
LUT_SIZE = 4096
#: Most pixels looked at to compute percentile limits.
LIMIT_SAMPLE = 16384
#: Colour of saturated pixels (pure red is in none of the colour maps' middles).
SATURATION_RGB = (255, 0, 0)
#: log stretch: ``log(1 + a t) / log(1 + a)`` (as DS9's log with exponent 1000).
_LOG_A = 1000.0
#: asinh stretch: ``asinh(t / b) / asinh(1 / b)``.
_ASINH_B = 0.1


def _check_percentiles(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, float) and math.isfinite(v) for v in value)
        and 0.0 <= value[0] < value[1] <= 100.0
    )
    if not ok:
        msg = f"percentiles must be two numbers 0 <= low < high <= 100 (got {value!r})"
        raise ConfigError(msg)


def _check_manual(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, float) and math.isfinite(v) for v in value)
        and value[0] < value[1]
    )
    if not ok:
        msg = f"manual limits must be two finite numbers low < high (got {value!r})"
        raise ConfigError(msg)


def _pair(value: object) -> object:
    if isinstance(value, list | tuple) and len(value) == 2:
        try:
            return (float(value[0]), float(value[1]))
        except (TypeError, ValueError):
            return value
    return value


def _check_choice(choices: tuple[str, ...] | Mapping[str, object], what: str) -> Any:  # noqa: ANN401
    def check(inst: object, attr: attrs.Attribute[str], value: object) -> None:
        if value not in choices:
            msg = f"{what} must be one of {', '.join(choices)} (got {value!r})"
            raise ConfigError(msg)

    return check


def _check_factor(inst: object, attr: attrs.Attribute[int], value: object) -> None:
    check_int(value, "binning factor", 1, 64)


def _check_saturation(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        msg = f"saturation level must be a number of ADU (got {value!r})"
        raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class RenderSettings:
    """How a frame is turned into screen pixels (a value: change it with ``attrs.evolve``).

    Attributes
    ----------
    stretch
        One of :data:`STRETCHES`.
    colormap
        One of :data:`COLORMAPS`.
    percentiles
        ``(low, high)`` percentiles giving the limits when ``manual`` is None.
    manual
        Fixed ``(low, high)`` limits in ADU (after dark subtraction), or None.
    factor
        Display binning factor (1 = every pixel).
    sample
        Decimate (one pixel per block) instead of averaging the block.
    saturation
        Raw level at or above which a pixel is saturated; None = the pixel
        type's maximum (65535 for uint16; never for floats).
    show_saturation
        Paint saturated pixels in :data:`SATURATION_RGB`.
    """

    stretch: str = attrs.field(default="linear", validator=_check_choice(STRETCHES, "stretch"))
    colormap: str = attrs.field(default="grey", validator=_check_choice(COLORMAPS, "colour map"))
    percentiles: tuple[float, float] = attrs.field(
        default=(0.5, 99.5), converter=_pair, validator=_check_percentiles
    )
    manual: tuple[float, float] | None = attrs.field(
        default=None, converter=_pair, validator=_check_manual
    )
    factor: int = attrs.field(default=1, validator=_check_factor)
    sample: bool = False
    saturation: float | None = attrs.field(default=None, validator=_check_saturation)
    show_saturation: bool = True


@attrs.frozen(kw_only=True)
class Rendered:
    """One rendered frame.

    Attributes
    ----------
    rgb
        ``(h, w, 3)`` uint8 screen pixels (row 0 = frame row 0); reused by the
        next render of the same :class:`Renderer`: copy it to keep it.
    image
        The reduced float32 image (dark subtracted, binned), reused likewise.
    lo, hi
        The limits used.
    factor
        Binning factor used.
    saturated
        Number of reduced pixels flagged saturated.
    frame_shape
        Shape of the frame rendered.
    """

    rgb: NDArray[np.uint8] = attrs.field(eq=False, repr=False)
    image: NDArray[np.float32] = attrs.field(eq=False, repr=False)
    lo: float
    hi: float
    factor: int
    saturated: int
    frame_shape: tuple[int, int]


def lookup_table(stretch: str, colormap: str, size: int = LUT_SIZE) -> NDArray[np.uint8]:
    """Build the ``(size, 3)`` uint8 table mapping ``t`` in 0..1 to a colour.

    Parameters
    ----------
    stretch
        One of :data:`STRETCHES`.
    colormap
        One of :data:`COLORMAPS`.
    size
        Entries.

    Returns
    -------
    ndarray of uint8

    Raises
    ------
    ConfigError
        Unknown stretch or colour map.
    """
    if stretch not in STRETCHES:
        msg = f"stretch must be one of {', '.join(STRETCHES)} (got {stretch!r})"
        raise ConfigError(msg)
    if colormap not in COLORMAPS:
        msg = f"colour map must be one of {', '.join(COLORMAPS)} (got {colormap!r})"
        raise ConfigError(msg)
    t = np.linspace(0.0, 1.0, size)
    if stretch == "sqrt":
        t = np.sqrt(t)
    elif stretch == "log":
        t = np.log1p(_LOG_A * t) / math.log1p(_LOG_A)
    elif stretch == "asinh":
        t = np.arcsinh(t / _ASINH_B) / math.asinh(1.0 / _ASINH_B)
    anchors = np.array(COLORMAPS[colormap], dtype=np.float64)
    rgb = np.stack([np.interp(t, anchors[:, 0], anchors[:, c]) for c in (1, 2, 3)], axis=1)
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))


def auto_factor(frame_shape: tuple[int, ...], view_size: tuple[int, int]) -> int:
    """Binning factor so the whole frame fits ``view_size`` without wasting pixels.

    Parameters
    ----------
    frame_shape
        ``(height, width)`` of the frame.
    view_size
        ``(width, height)`` of the image area on screen, in screen pixels.

    Returns
    -------
    int
        The frame-to-screen ratio rounded to the nearest integer, at least 1
        (an MBI frame, 2236 wide, in a 1200-pixel window: 2): no more pixels
        are rendered than the screen shows, give or take a third.
    """
    height, width = int(frame_shape[0]), int(frame_shape[1])
    view_w, view_h = max(int(view_size[0]), 1), max(int(view_size[1]), 1)
    # the frame is fitted with its aspect kept: the tighter axis sets the scale
    return max(1, min(int(max(width / view_w, height / view_h) + 0.5), 64))


def _saturation_level(settings: RenderSettings, dtype: np.dtype[Any]) -> float:
    if settings.saturation is not None:
        return float(settings.saturation)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return math.inf


class Renderer:
    """Render frames with one :class:`RenderSettings`, reusing its buffers.

    Parameters
    ----------
    settings
        Initial settings; replace them with :attr:`settings` at any time.

    Examples
    --------
    >>> renderer = Renderer(RenderSettings(stretch="log", factor=2))
    >>> shown = renderer.render(frame)
    >>> shown.rgb.shape
    (548, 1118, 3)
    """

    def __init__(self, settings: RenderSettings | None = None) -> None:
        self._settings = settings if settings is not None else RenderSettings()
        self._lut = lookup_table(self._settings.stretch, self._settings.colormap)
        self._image: NDArray[np.float32] | None = None
        self._sat: NDArray[np.uint8] | None = None
        self._rgb: NDArray[np.uint8] | None = None
        self._empty_dark = np.zeros((1, 1), np.float32)
        self._sat_rgb = np.array(SATURATION_RGB, np.uint8)

    @property
    def settings(self) -> RenderSettings:
        """The current settings (assign a new value to change them)."""
        return self._settings

    @settings.setter
    def settings(self, value: RenderSettings) -> None:
        if not isinstance(value, RenderSettings):
            msg = f"settings must be a RenderSettings (got {type(value).__name__})"  # type: ignore[unreachable]
            raise ConfigError(msg)
        old, self._settings = self._settings, value
        if (old.stretch, old.colormap) != (value.stretch, value.colormap):
            self._lut = lookup_table(value.stretch, value.colormap)

    def _buffers(
        self, shape: tuple[int, int]
    ) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.uint8]]:
        image, sat, rgb = self._image, self._sat, self._rgb
        if image is None or sat is None or rgb is None or image.shape != shape:
            image = self._image = np.empty(shape, np.float32)
            sat = self._sat = np.empty(shape, np.uint8)
            rgb = self._rgb = np.empty((*shape, 3), np.uint8)
        return image, sat, rgb

    def limits(self, image: NDArray[np.float32]) -> tuple[float, float]:
        """Return the display limits for a reduced image under the current settings.

        Parameters
        ----------
        image
            Reduced image (:attr:`Rendered.image`).

        Returns
        -------
        tuple of float
            ``(lo, hi)``, with ``hi > lo``.
        """
        if self._settings.manual is not None:
            return self._settings.manual
        flat = image.reshape(-1)
        step = max(1, flat.size // LIMIT_SAMPLE)
        sample = flat[::step]
        lo, hi = (float(v) for v in np.percentile(sample, self._settings.percentiles))
        if not hi > lo:  # a flat frame: a one-ADU window keeps the division defined
            hi = lo + 1.0
        return lo, hi

    def render(self, frame: object, dark: NDArray[Any] | None = None) -> Rendered:
        """Render one frame.

        Parameters
        ----------
        frame
            2-D frame (any real pixel type).
        dark
            Dark frame of the same shape (any real type), subtracted first; None for none.

        Returns
        -------
        Rendered

        Raises
        ------
        ConfigError
            Not a 2-D real frame, smaller than one block, or a dark of another shape.
        """
        from vampires.view import _jit

        if not isinstance(frame, np.ndarray) or frame.ndim != 2 or frame.dtype.kind not in "uif":
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else frame
            msg = f"can only show 2-D frames of real pixels (got {got!r})"
            raise ConfigError(msg)
        s = self._settings
        factor = s.factor
        if frame.shape[0] < factor or frame.shape[1] < factor:
            factor = max(1, min(frame.shape))
        if dark is not None and dark.shape != frame.shape:
            msg = (
                f"dark frame shape {dark.shape} does not match the frame {frame.shape}; "
                "load a dark taken in the same crop"
            )
            raise ConfigError(msg)
        shape = (frame.shape[0] // factor, frame.shape[1] // factor)
        image, sat, rgb = self._buffers(shape)
        frame_c = np.ascontiguousarray(frame)
        dark_c = self._empty_dark if dark is None else np.ascontiguousarray(dark)
        level = _saturation_level(s, frame.dtype)
        _jit.reduce_frame(frame_c, dark_c, dark is not None, factor, s.sample, level, image, sat)
        lo, hi = self.limits(image)
        _jit.colourise(image, sat, lo, hi, self._lut, self._sat_rgb, s.show_saturation, rgb)
        saturated = int(np.count_nonzero(sat)) if s.show_saturation else 0
        return Rendered(
            rgb=rgb,
            image=image,
            lo=lo,
            hi=hi,
            factor=factor,
            saturated=saturated,
            frame_shape=(int(frame.shape[0]), int(frame.shape[1])),
        )
