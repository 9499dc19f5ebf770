"""The ``.txt`` timing sidecar of a cube (the 7 columns milk's logger writes).

``#`` header lines (title, the column list, the logger's drop accounting), then
exactly NAXIS3 rows, one per frame::

    index  cnt0  t - t0 (logger)  logger time  acquisition time  cnt0  cnt1
    %10d   %10d  %15.9f           %20.9f       %17.6f            %10d  %10d

Column 2 repeats the stream counter (milk's "main index"); times are unix
seconds; the acquisition time is 0 when the camera did not stamp one.
scxkw pairs cameras on column 5 and drops a sidecar whose row count differs
from NAXIS3.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import attrs
import numpy as np

from vampires.errors import FitsFormatError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "ROW_FORMAT",
    "FrameTimes",
    "format_rows",
    "format_sidecar",
    "parse_sidecar",
    "sidecar_head",
]

ROW_FORMAT = "%10d %10d %15.9f %20.9f %17.6f %10d %10d"
_YIELD_ROWS = 200


@attrs.frozen(kw_only=True)
class FrameTimes:
    """Per-frame counters and clocks of one cube (arrays of length NAXIS3).

    Attributes
    ----------
    cnt0, cnt1
        Stream counters of each frame.
    logger_time
        Unix time the logger received each frame.
    acquisition_time
        Unix time the camera stamped each frame (0 if unknown).
    """

    cnt0: NDArray[np.int64]
    cnt1: NDArray[np.int64]
    logger_time: NDArray[np.float64]
    acquisition_time: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.cnt0)

    def truncated(self, n: int) -> FrameTimes:
        """Return the first ``n`` frames' times."""
        return FrameTimes(
            cnt0=self.cnt0[:n],
            cnt1=self.cnt1[:n],
            logger_time=self.logger_time[:n],
            acquisition_time=self.acquisition_time[:n],
        )


def sidecar_head(*, stream: str, fits_name: str, notes: tuple[str, ...] = ()) -> str:
    """Return the ``#`` lines that open a sidecar (title, column list, ``notes``).

    Parameters
    ----------
    stream, fits_name
        For the title line.
    notes
        Extra ``#`` lines (drop accounting, close reason).

    Returns
    -------
    str
    """
    out = io.StringIO()
    out.write(f"# Timing of the frames of {fits_name} (stream {stream}), written by vampires\n")
    out.write("#\n")
    for line in (
        "col1 : frame index in the cube",
        "col2 : stream counter (cnt0)",
        "col3 : time since the cube's first frame, logger clock [s]",
        "col4 : absolute time, logger clock [unix s]",
        "col5 : absolute time, acquisition clock [unix s] (0 = not stamped)",
        "col6 : stream cnt0",
        "col7 : stream cnt1",
        *notes,
    ):
        out.write(f"# {line}\n")
    out.write("#\n")
    return out.getvalue()


def format_rows(times: FrameTimes, start: int = 0, stop: int | None = None) -> str:
    """Return the rows of frames ``start .. stop-1`` (times relative to frame 0's).

    The streaming writer appends the rows of each flush with this; yields the
    GIL every few hundred rows so the logger's reader thread is never held up.
    """
    stop = len(times) if stop is None else stop
    if stop <= start:
        return ""
    out = io.StringIO()
    t0 = times.logger_time[0]
    sl = slice(start, stop)
    rows = zip(
        range(start, stop),
        times.cnt0[sl].tolist(),
        (times.logger_time[sl] - t0).tolist(),
        times.logger_time[sl].tolist(),
        times.acquisition_time[sl].tolist(),
        times.cnt0[sl].tolist(),
        times.cnt1[sl].tolist(),
        strict=True,
    )
    fmt = ROW_FORMAT + "\n"
    for k, row in enumerate(rows):
        out.write(fmt % row)
        if k % _YIELD_ROWS == _YIELD_ROWS - 1:
            time.sleep(0)  # let the logger's reader thread take the GIL
    return out.getvalue()


def format_sidecar(
    times: FrameTimes, *, stream: str, fits_name: str, notes: tuple[str, ...] = ()
) -> str:
    """Return the sidecar text of a cube.

    Parameters
    ----------
    times
        Per-frame counters and clocks (one row each).
    stream, fits_name
        For the title line.
    notes
        Extra ``#`` lines (drop accounting, close reason).

    Returns
    -------
    str
    """
    return sidecar_head(stream=stream, fits_name=fits_name, notes=notes) + format_rows(times)


def parse_sidecar(text: str, *, complete_lines: bool = False) -> FrameTimes:
    """Parse a sidecar back into :class:`FrameTimes` (rows only; ``#`` lines ignored).

    Parameters
    ----------
    text
        Sidecar contents.
    complete_lines
        Ignore a last line with no newline (a sidecar being written, or cut by
        a killed logger in the middle of a row).

    Returns
    -------
    FrameTimes

    Raises
    ------
    FitsFormatError
        A row does not have 7 numeric columns.
    """
    if complete_lines and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows: list[list[str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 7:
            msg = f"sidecar line {lineno}: expected 7 columns (got {len(fields)})"
            raise FitsFormatError(msg)
        rows.append(fields)
    try:
        cnt0 = np.array([int(r[5]) for r in rows], np.int64)
        cnt1 = np.array([int(r[6]) for r in rows], np.int64)
        logger_time = np.array([float(r[3]) for r in rows], np.float64)
        acquisition_time = np.array([float(r[4]) for r in rows], np.float64)
    except ValueError as exc:
        msg = f"sidecar has a non-numeric value: {exc}"
        raise FitsFormatError(msg) from exc
    return FrameTimes(
        cnt0=cnt0, cnt1=cnt1, logger_time=logger_time, acquisition_time=acquisition_time
    )
