"""How frames are grouped into FITS cubes: :class:`CubePolicy` and its presets.

A policy says how many frames go into one cube, how many cubes a run writes,
when a cube closes early (timeout) and how many bytes a cube may hold. It is a
frozen value: change it with :func:`attrs.evolve` and hand the new one to
``Logger.set_policy`` (applied at the next cube).

Presets follow the operating page's cube-size table (decimal GB):

=============  ======  ==========================
preset         frames  cube (current crops)
=============  ======  ==========================
STANDARD       2000    536x536 -> 1.15 GB
MBI            250     2236x1096 -> 1.23 GB
MBI_REDUCED    500     2232x540 -> 1.21 GB
=============  ======  ==========================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vampires._checks import int_field, is_int, is_number, seconds_field
from vampires.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = [
    "FLUSH_INTERVAL",
    "MAX_BYTES",
    "MAX_CUBES",
    "MAX_FRAMES_PER_CUBE",
    "MAX_TIMEOUT",
    "MBI",
    "MBI_REDUCED",
    "MIN_TIMEOUT",
    "PRESETS",
    "SILENT_PERIODS",
    "STANDARD",
    "CubePolicy",
    "frame_nbytes",
]

#: An adaptive timeout never closes a cube after less than this many seconds of silence.
MIN_TIMEOUT = 2.0
#: An adaptive timeout closes a cube after this many silent frame periods.
SILENT_PERIODS = 5.0
#: Most frames in one cube: NAXIS3 as milk's ``uint32_t size[]`` and a C ``int`` hold it.
MAX_FRAMES_PER_CUBE = 2**31 - 1
#: Most cubes in one run (``-1`` = until stopped is always allowed).
MAX_CUBES = 2**31 - 1
#: Longest silence timeout (s): a day; longer means "never", which is what None adapts to.
MAX_TIMEOUT = 86400.0
#: Largest ``max_bytes`` (an ``off_t``).
MAX_BYTES = 2**63 - 1
#: Default longest time a taken frame waits in RAM before it is written to its ``.fits.tmp``.
FLUSH_INTERVAL = 1.0
_FIELDS = ("frames_per_cube", "cubes", "timeout", "max_bytes", "flush_interval", "sync_interval")
_MAX_INTERVAL = 3600.0


def _check_cubes(_inst: object, _attr: object, value: int) -> None:
    if not is_int(value) or (value != -1 and not 1 <= value <= MAX_CUBES):
        msg = (
            f"CubePolicy: 'cubes' must be -1 (until stopped) or an integer in 1..{MAX_CUBES} "
            f"(got {value!r})"
        )
        raise ConfigError(msg)


def _to_int(value: object) -> object:
    """Return NumPy integers as ``int`` (the policy goes to JSON); anything else as is."""
    return int(value) if is_int(value) else value  # type: ignore[call-overload]


def _to_seconds(value: object) -> object:
    """Return numbers as ``float`` (seconds); anything else (None, bad values) as is."""
    return float(value) if is_number(value) else value  # type: ignore[arg-type]


def frame_nbytes(shape: tuple[int, ...], dtype: DTypeLike) -> int:
    """Return the number of bytes of one frame.

    Parameters
    ----------
    shape
        Frame shape in numpy order, ``(height, width)``.
    dtype
        Pixel type.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        The shape is empty or has a non-positive size, or the dtype is unknown.
    """
    try:
        dims = tuple(int(n) for n in shape)
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError) as exc:
        msg = f"bad frame shape/dtype {shape!r}/{dtype!r}: {exc}"
        raise ConfigError(msg) from exc
    if not dims or any(n < 1 for n in dims):
        msg = f"frame shape must be non-empty with sizes >= 1 (got {shape!r})"
        raise ConfigError(msg)
    return math.prod(dims) * itemsize


@attrs.frozen(kw_only=True)
class CubePolicy:
    """How a logger cuts a stream into cubes.

    Parameters
    ----------
    frames_per_cube
        Frames in a full cube (NAXIS3), 1 to :data:`MAX_FRAMES_PER_CUBE`.
    cubes
        Cubes to write before saving stops by itself (up to :data:`MAX_CUBES`);
        ``-1`` = until stopped.
    timeout
        Seconds of stream silence after which a partly filled cube is closed
        (at most :data:`MAX_TIMEOUT`).
        ``None`` (default) adapts to the stream: ``max(MIN_TIMEOUT,
        SILENT_PERIODS * frame period)``, so slow exposures never turn into
        one-frame files.
    max_bytes
        Optional cap on a cube's pixel bytes; a cube closes when the next frame
        would exceed it (never below one frame).
    flush_interval
        Longest time (s) a frame taken by the logger waits in RAM before it is
        written to the cube's ``.fits.tmp`` (default 1 s; also every 32 MiB),
        so a killed logger loses at most this much (``vampires recover``).
    sync_interval
        Period (s) of ``fdatasync`` of the cube being written: 0 (default) at
        every flush, N at most every N s, None only when the cube closes. Data
        written but not synced survives a killed process (it is in the page
        cache) but not a power cut.

    Examples
    --------
    >>> policy = CubePolicy.for_frame((1096, 2236), "uint16")
    >>> policy.frames_per_cube
    245
    """

    frames_per_cube: int = attrs.field(
        converter=_to_int, validator=int_field("CubePolicy", 1, MAX_FRAMES_PER_CUBE)
    )
    cubes: int = attrs.field(default=-1, converter=_to_int, validator=_check_cubes)
    timeout: float | None = attrs.field(
        default=None,
        converter=_to_seconds,
        validator=seconds_field("CubePolicy", 0.0, MAX_TIMEOUT, optional=True),
    )
    max_bytes: int | None = attrs.field(
        default=None,
        converter=_to_int,
        validator=int_field("CubePolicy", 1, MAX_BYTES, optional=True),
    )
    flush_interval: float = attrs.field(
        default=FLUSH_INTERVAL,
        converter=_to_seconds,
        validator=seconds_field("CubePolicy", 0.0, _MAX_INTERVAL),
    )
    sync_interval: float | None = attrs.field(
        default=1.0,
        converter=_to_seconds,
        validator=seconds_field("CubePolicy", 0.0, _MAX_INTERVAL, lo_open=False, optional=True),
    )

    @classmethod
    def for_frame(
        cls,
        shape: tuple[int, ...],
        dtype: DTypeLike,
        target_bytes: float = 1.2e9,
        *,
        cubes: int = -1,
        timeout: float | None = None,
    ) -> CubePolicy:
        """Return the policy whose cubes hold about ``target_bytes`` of pixels.

        Parameters
        ----------
        shape
            Frame shape in numpy order, ``(height, width)``.
        dtype
            Pixel type.
        target_bytes
            Wanted cube size in bytes (operators aim for 1-2 GB).
        cubes, timeout
            As in :class:`CubePolicy`.

        Returns
        -------
        CubePolicy

        Raises
        ------
        ConfigError
            Bad shape, dtype or target.
        """
        if not target_bytes > 0:
            msg = f"CubePolicy.for_frame: 'target_bytes' must be > 0 (got {target_bytes!r})"
            raise ConfigError(msg)
        frames = max(1, round(float(target_bytes) / frame_nbytes(shape, dtype)))
        return cls(frames_per_cube=frames, cubes=cubes, timeout=timeout)

    def frames_for(self, shape: tuple[int, ...], dtype: DTypeLike) -> int:
        """Return the frames a cube of this frame shape holds (``max_bytes`` applied).

        Parameters
        ----------
        shape, dtype
            The frame's shape (numpy order) and pixel type.

        Returns
        -------
        int
        """
        frames = self.frames_per_cube
        if self.max_bytes is not None:
            frames = min(frames, max(1, self.max_bytes // frame_nbytes(shape, dtype)))
        return frames

    def cube_nbytes(self, shape: tuple[int, ...], dtype: DTypeLike) -> int:
        """Return the pixel bytes of one full cube, known before frame 1.

        Parameters
        ----------
        shape, dtype
            The frame's shape (numpy order) and pixel type.

        Returns
        -------
        int
            ``frames_for(shape, dtype) * frame bytes`` (header and padding excluded).
        """
        return self.frames_for(shape, dtype) * frame_nbytes(shape, dtype)

    def effective_timeout(self, frame_period: float | None) -> float:
        """Return the silence (s) after which a partly filled cube closes.

        Parameters
        ----------
        frame_period
            The stream's current frame period in seconds, if known.

        Returns
        -------
        float
            ``timeout`` if set, else ``max(MIN_TIMEOUT, SILENT_PERIODS * frame_period)``.
        """
        if self.timeout is not None:
            return self.timeout
        if frame_period is None or not math.isfinite(frame_period) or frame_period <= 0:
            return MIN_TIMEOUT
        return max(MIN_TIMEOUT, SILENT_PERIODS * frame_period)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; :meth:`from_dict` turns it back into an equal policy."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CubePolicy:
        """Build a policy from :meth:`to_dict` output (or a JSON command's arguments).

        Parameters
        ----------
        data
            Mapping with ``frames_per_cube`` and optionally ``cubes``,
            ``timeout``, ``max_bytes``, ``flush_interval``, ``sync_interval``.

        Returns
        -------
        CubePolicy

        Raises
        ------
        ConfigError
            Not a mapping, unknown keys, missing ``frames_per_cube`` or bad values.
        """
        if not isinstance(data, Mapping):  # callers pass decoded JSON
            msg = f"CubePolicy.from_dict: expected a mapping (got {type(data).__name__})"  # type: ignore[unreachable]
            raise ConfigError(msg)
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            msg = f"CubePolicy.from_dict: unknown keys {unknown}; expected some of {list(_FIELDS)}"
            raise ConfigError(msg)
        if "frames_per_cube" not in data:
            msg = "CubePolicy.from_dict: 'frames_per_cube' is required"
            raise ConfigError(msg)
        return cls(**dict(data))


STANDARD = CubePolicy(frames_per_cube=2000)
MBI = CubePolicy(frames_per_cube=250)
MBI_REDUCED = CubePolicy(frames_per_cube=500)
#: Presets by crop name.
PRESETS: Mapping[str, CubePolicy] = MappingProxyType(
    {"STANDARD": STANDARD, "MBI": MBI, "MBI_REDUCED": MBI_REDUCED}
)
