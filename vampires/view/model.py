"""One stream's view, without Qt: source, dark, pause, rendering, status, saving.

:class:`StreamView` is everything the window shows for one stream, as plain
Python: :meth:`StreamView.update` polls the source and renders the newest
frame (when not paused); :meth:`StreamView.status` builds the status line;
:meth:`StreamView.save_fits` writes the frame shown. The Qt front end
(:mod:`vampires.view.window`) only draws what this object holds, so the
viewer's behaviour is tested on arrays.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vampires._checks import ShmDir
from vampires.errors import ConfigError, FitsFormatError
from vampires.view.overlay import FieldOutline, WcsPoint, mbi_outlines, wcs_points
from vampires.view.render import Rendered, Renderer, RenderSettings
from vampires.view.source import FrameSource, SourceFrame, open_source
from vampires.view.status import LoggerWatch, RateMeter, StatusLine

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["KEY_HELP", "StreamView", "default_max_fps", "load_dark", "save_frame"]

#: Keyboard shortcuts of the window (shown by ``h``), in help order.
KEY_HELP = (
    ("h  ?", "show / hide this help"),
    ("space  p", "pause / resume the display (the camera goes on)"),
    ("s", "next stretch: linear, sqrt, log, asinh"),
    ("c", "next colour map"),
    ("l", "next percentile limits: 0.5-99.5, 1-99, 5-95, min-max"),
    ("m", "freeze the current limits (manual); l goes back to percentiles"),
    ("b", "display binning: auto, 1, 2, 3, 4"),
    ("d", "binning: block mean / decimation"),
    ("t", "saturation highlight on / off"),
    ("o", "MBI field outlines on / off"),
    ("w", "write the frame shown to <save dir>/<stream>_<UT>.fits"),
    ("k  K", "subtract a dark from a FITS file / stop subtracting"),
    ("r  0", "reset zoom (wheel: zoom, drag: pan)"),
    ("q  Esc", "close the viewer"),
)
#: Display rate when the X display is local, and over X forwarding (ssh -X).
LOCAL_FPS = 60.0
FORWARDED_FPS = 10.0

logger = logging.getLogger(__name__)


def default_max_fps(display: str | None) -> float:
    """Display rate for an X display: full on a local screen, reduced over X forwarding.

    Parameters
    ----------
    display
        The ``DISPLAY`` value (``:0``, ``localhost:10.0`` under ``ssh -X``), or None.

    Returns
    -------
    float
        :data:`LOCAL_FPS`, or :data:`FORWARDED_FPS` when the display is on
        another host (a host name before the colon, other than ``unix``).
    """
    host = (display or "").rpartition(":")[0]
    local = not host or host == "unix" or host.startswith("/")  # macOS launchd socket path
    return LOCAL_FPS if local else FORWARDED_FPS


def load_dark(path: str | os.PathLike[str]) -> NDArray[np.float32]:
    """Read a dark frame from a FITS file (a 2-D image, or the mean of a cube).

    Parameters
    ----------
    path
        FITS file; its primary HDU (or first image extension) holds the dark.

    Returns
    -------
    ndarray of float32
        ``(height, width)``.

    Raises
    ------
    FitsFormatError
        Missing, unreadable, or not an image of 2 or 3 axes.
    """
    from astropy.io import fits  # type: ignore[import-untyped]

    where = Path(path)
    try:
        with fits.open(where, memmap=False) as hdus:
            data = next((h.data for h in hdus if getattr(h, "data", None) is not None), None)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"cannot read dark frame {where}: {exc}"
        raise FitsFormatError(msg) from exc
    if data is None or data.ndim not in (2, 3) or data.dtype.kind not in "uif":
        got = "no image" if data is None else f"{data.dtype} {data.shape}"
        msg = f"dark frame {where} must be a 2-D image or a cube of them (got {got})"
        raise FitsFormatError(msg)
    dark = data.mean(axis=0) if data.ndim == 3 else data
    return np.ascontiguousarray(dark, dtype=np.float32)


def save_frame(
    path: str | os.PathLike[str],
    frame: NDArray[Any],
    *,
    keywords: dict[str, tuple[Any, str]],
    acquisition_time: float,
    overwrite: bool = False,
) -> Path:
    """Write one frame as a FITS file with the stream keywords, as the logger writes cubes.

    The file is a one-frame cube (``NAXIS3 = 1``) with the logger's header
    (:func:`vampires.fitslog.header.cube_header`): stream keywords (not the
    ``_`` ones) and the timing cards of the frame's acquisition time.

    Parameters
    ----------
    path
        Destination ``.fits`` file.
    frame
        The frame (2-D).
    keywords
        ``{name: (value, comment)}``.
    acquisition_time
        Unix seconds of the frame (0: now).
    overwrite
        Replace an existing file.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        The file exists and ``overwrite`` is false, or the frame is not 2-D.
    FitsFormatError
        The file cannot be written.
    """
    from vampires.fitslog.header import BLOCK, cube_header, timing_cards
    from vampires.kernels import fits_format, frame_to_fits

    dest = Path(path)
    if frame.ndim != 2:
        msg = f"only 2-D frames can be saved (got {frame.shape})"
        raise ConfigError(msg)
    if dest.exists() and not overwrite:
        msg = f"{dest} exists; choose another name or pass overwrite=True"
        raise ConfigError(msg)
    fmt = fits_format(frame.dtype)
    t = acquisition_time if acquisition_time > 0 else time.time()
    cards = [(name, value, comment) for name, (value, comment) in keywords.items()]
    header = cube_header(
        fmt=fmt,
        frame_shape=(int(frame.shape[0]), int(frame.shape[1])),
        nframes=1,
        stream=cards,
        timing=timing_cards(t, t, written=time.time(), source="acquisition"),
        on_bad_card=lambda name, exc: logger.warning(
            "save %s: card %s skipped: %s", dest, name, exc
        ),
    )
    disk = np.empty(frame.shape, fmt.disk)
    frame_to_fits(np.ascontiguousarray(frame), disk)
    body = disk.tobytes()
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(header)
            fh.write(body)
            fh.write(b"\0" * (-len(body) % BLOCK))
        tmp.replace(dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write {dest}: {exc.strerror or exc}"
        raise FitsFormatError(msg) from exc
    return dest


class StreamView:
    """Everything the viewer shows for one stream.

    Parameters
    ----------
    source
        A :class:`~vampires.view.source.FrameSource`, or a target string
        (``vcam1``, ``tcp://host:5555/vcam1``).
    settings
        Initial render settings.
    watch_logger
        Ask the local logger daemon for its state once a second (local streams only).
    shm_dir
        Shm folder of local streams and control sockets.
    """

    def __init__(
        self,
        source: FrameSource | str,
        *,
        settings: RenderSettings | None = None,
        watch_logger: bool = True,
        shm_dir: ShmDir = None,
    ) -> None:
        self.source: FrameSource = (
            open_source(source, shm_dir=shm_dir) if isinstance(source, str) else source
        )
        self.renderer = Renderer(settings)
        self.frame: SourceFrame | None = None
        self._raw: NDArray[Any] | None = None
        self.rendered: Rendered | None = None
        self.paused = False
        self.dark: NDArray[np.float32] | None = None
        self.dark_name: str | None = None
        self.message = ""
        self._stream_rate = RateMeter()
        self._shown_rate = RateMeter()
        self._shown = 0
        target = self.source.target
        self._logger: LoggerWatch | None = None
        if watch_logger and not target.remote:
            self._logger = LoggerWatch(target.name, shm_dir=shm_dir)

    @property
    def name(self) -> str:
        """The target shown (``vcam1`` or ``tcp://host:port/vcam1``)."""
        return str(self.source.target)

    @property
    def shape(self) -> tuple[int, int] | None:
        """Shape of the frame shown, None before the first."""
        return None if self._raw is None else (int(self._raw.shape[0]), int(self._raw.shape[1]))

    def update(self) -> bool:
        """Take the newest frame from the source and render it (unless paused).

        Returns
        -------
        bool
            True when a new frame was rendered.
        """
        if self.paused:  # the source keeps the frame shown: do not poll it
            return False
        frame = self.source.poll()
        if frame is None:
            return False
        self._stream_rate.add(frame.acquisition_time, frame.cnt0)
        if self.dark is not None and self.dark.shape != frame.data.shape:
            self.message = (
                f"dark {self.dark_name} is {self.dark.shape}, frames are now "
                f"{frame.data.shape}: dark subtraction off"
            )
            self.dark = None
            self.dark_name = None
        # the source's buffer, valid until its next poll (no second copy of the frame)
        self._raw = frame.data
        self.frame = frame
        self.rendered = self.renderer.render(self._raw, self.dark)
        self._shown += 1
        self._shown_rate.add(time.monotonic(), self._shown)
        return True

    def rerender(self) -> Rendered | None:
        """Render the frame shown again (after a settings change, or while paused)."""
        if self._raw is None:
            return None
        self.rendered = self.renderer.render(self._raw, self.dark)
        return self.rendered

    @property
    def settings(self) -> RenderSettings:
        """Render settings (assigning re-renders the frame shown)."""
        return self.renderer.settings

    @settings.setter
    def settings(self, value: RenderSettings) -> None:
        self.renderer.settings = value
        self.rerender()

    def set_dark(self, path: str | os.PathLike[str] | None) -> None:
        """Subtract the dark frame of a FITS file (None: stop subtracting).

        Raises
        ------
        FitsFormatError
            Unreadable file.
        ConfigError
            The dark's shape differs from the frames shown.
        """
        if path is None:
            self.dark, self.dark_name = None, None
            self.rerender()
            return
        dark = load_dark(path)
        if self._raw is not None and dark.shape != self._raw.shape:
            msg = (
                f"dark {Path(path).name} is {dark.shape[1]}x{dark.shape[0]}, the frames are "
                f"{self._raw.shape[1]}x{self._raw.shape[0]}: take a dark in the same crop"
            )
            raise ConfigError(msg)
        self.dark, self.dark_name = dark, Path(path).name
        self.message = ""
        self.rerender()

    def value_at(self, x: float, y: float) -> tuple[int, int, float] | None:
        """Pixel under display point ``(x, y)``: ``(column, row, value)`` (dark subtracted).

        Returns
        -------
        tuple or None
            None outside the frame or before the first frame.
        """
        if self._raw is None:
            return None
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= row < self._raw.shape[0] and 0 <= col < self._raw.shape[1]):
            return None
        value = float(self._raw[row, col])
        if self.dark is not None:
            value -= float(self.dark[row, col])
        return col, row, value

    def outlines(self) -> tuple[FieldOutline, ...]:
        """MBI field outlines of the frame shown (empty outside MBI crops)."""
        if self.frame is None or self._raw is None:
            return ()
        return mbi_outlines(self.source.target.name, self.frame.keywords, self._raw.shape[:2])

    def wcs_points(self) -> tuple[WcsPoint, ...]:
        """WCS reference points of the frame shown."""
        return () if self.frame is None else wcs_points(self.frame.keywords)

    def status(self) -> StatusLine:
        """Build the status line from the frame shown, the rates and the logger."""
        message = self.source.state or self.message
        fields: dict[str, Any] = {
            "cnt0": None if self.frame is None else self.frame.cnt0,
            "stream_fps": self._stream_rate.rate,
            "shown_fps": self._shown_rate.rate,
            "logger": "- (remote)" if self._logger is None else self._logger.text,
            "paused": self.paused,
            "dark": self.dark_name,
            "message": message,
        }
        keywords = {} if self.frame is None else self.frame.keywords
        return StatusLine.from_keywords(self.name, keywords, **fields)

    def save_fits(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Save the frame shown (raw, not dark subtracted) with the stream keywords.

        Parameters
        ----------
        path
            Destination file.
        overwrite
            Replace an existing file.

        Returns
        -------
        Path

        Raises
        ------
        ConfigError
            No frame shown yet, or the file exists.
        FitsFormatError
            The file cannot be written.
        """
        if self._raw is None or self.frame is None:
            msg = f"{self.name}: no frame shown yet, nothing to save"
            raise ConfigError(msg)
        cards = {
            name: (value, self.frame.comments.get(name, ""))
            for name, value in self.frame.keywords.items()
        }
        return save_frame(
            path,
            self._raw,
            keywords=cards,
            acquisition_time=self.frame.acquisition_time,
            overwrite=overwrite,
        )

    def close(self) -> None:
        """Close the source and the logger watch (idempotent)."""
        self.source.close()
        if self._logger is not None:
            self._logger.close()
