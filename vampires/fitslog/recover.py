"""Turn ``.tmp`` cubes left by a killed logger (or a full disk) into valid FITS cubes.

A logger killed with ``kill -9`` (or a disk that filled up) can leave, in a
cube folder:

* ``<name>.fits.tmp``: the header (written first, with the planned NAXIS3)
  and the frames flushed so far (at least every ``flush_interval``);
* ``<stem>.txt.tmp``: the sidecar rows of those frames (each row is written
  before its frame's pixels).

:func:`recover_tmp` keeps the complete frames only: it truncates the pixels,
rewrites ``NAXIS3`` (and the ``UT-END``/``MJD``/``HST`` cards and ``LOGDRPIN``,
from the sidecar) in place — every card is exactly 80 bytes, so nothing moves — marks the cube
``LOGCLOSE = 'recovered'``, pads to 2880 with zeros, renames it to ``.fits`` and
writes a sidecar with exactly NAXIS3 rows. :func:`recover_folder` does that for
every ``.tmp`` under a folder; ``vampires recover <dir>`` is its command.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import attrs
import numpy as np

from vampires.errors import FitsFormatError, RecoverError
from vampires.fitslog.header import (
    BLOCK,
    CARD,
    card_name,
    format_card,
    read_header_cards,
    timing_cards,
)
from vampires.fitslog.names import FITS_TMP_SUFFIX, TXT_TMP_SUFFIX
from vampires.fitslog.sidecar import FrameTimes, format_sidecar, parse_sidecar

__all__ = ["ASIDE_SUFFIX", "RecoverReport", "recover_folder", "recover_tmp"]

logger = logging.getLogger(__name__)
_TIMING = frozenset({"UT", "UT-END", "MJD", "MJD-END", "HST", "HST-END"})
_SIMPLE = b"SIMPLE  ="
#: Suffix of a ``.tmp`` with no complete frame, set aside by :func:`recover_tmp`.
ASIDE_SUFFIX = ".aside"


@attrs.frozen(kw_only=True)
class RecoverReport:
    """What :func:`recover_tmp` did with one ``.tmp`` file.

    Attributes
    ----------
    source
        The ``.tmp`` file looked at.
    ok
        True when a valid ``.fits`` (or ``.txt``) now exists for it.
    message
        One line for the operator.
    path
        The recovered ``.fits`` (None if none).
    sidecar
        The ``.txt`` written (None if none).
    frames
        Frames in the recovered cube.
    lost
        Frames of the original cube that were incomplete and dropped.
    """

    source: Path
    ok: bool
    message: str
    path: Path | None = None
    sidecar: Path | None = None
    frames: int = 0
    lost: int = 0

    def line(self) -> str:
        """One line for the ``vampires recover`` output."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.source}: {self.message}"


def _int_card(cards: list[str], name: str, path: Path) -> int:
    for card in cards:
        if card_name(card) == name:
            try:
                return int(card[10:].partition("/")[0].strip())
            except ValueError:
                break
    msg = f"{path}: missing or non-integer {name} card"
    raise RecoverError(msg)


def _str_card(cards: list[str], name: str) -> str | None:
    for card in cards:
        if card_name(card) == name:
            text = card[10:].strip()
            if text.startswith("'"):
                return text[1:].partition("'")[0].strip()
    return None


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _sidecar_times(side_tmp: Path, frames: int) -> FrameTimes | None:
    if not side_tmp.is_file():
        return None
    try:
        times = parse_sidecar(side_tmp.read_text(encoding="ascii"), complete_lines=True)
    except (OSError, UnicodeDecodeError, FitsFormatError) as exc:
        logger.warning("%s: unreadable sidecar, writing an empty timing table: %s", side_tmp, exc)
        return None
    if len(times) < frames:
        return None
    return times.truncated(frames)


def _unknown_times(frames: int) -> FrameTimes:
    return FrameTimes(
        cnt0=np.full(frames, -1, np.int64),
        cnt1=np.full(frames, -1, np.int64),
        logger_time=np.zeros(frames),
        acquisition_time=np.zeros(frames),
    )


def _recover_sidecar_only(side_tmp: Path) -> RecoverReport:
    final = side_tmp.with_name(side_tmp.name.removesuffix(TXT_TMP_SUFFIX) + ".fits")
    if not final.is_file():
        return RecoverReport(
            source=side_tmp, ok=False, message="no cube for this sidecar; left as is"
        )
    try:
        cards, _ = read_header_cards(final)
        frames = _int_card(cards, "NAXIS3", final)
    except (FitsFormatError, RecoverError) as exc:
        return RecoverReport(source=side_tmp, ok=False, message=str(exc))
    times = _sidecar_times(side_tmp, frames)
    sidecar = final.with_suffix(".txt")
    if times is None:
        return RecoverReport(
            source=side_tmp, ok=False, message=f"sidecar has fewer than {frames} rows; left as is"
        )
    text = format_sidecar(
        times, stream=final.name.rpartition("_")[0], fits_name=final.name, notes=("recovered",)
    )
    _write_text(sidecar, text)
    side_tmp.unlink()
    return RecoverReport(
        source=side_tmp, ok=True, message=f"sidecar of {final.name} completed", path=final,
        sidecar=sidecar, frames=frames,
    )  # fmt: skip


def _locked(path: Path) -> bool:
    """Tell whether a running logger holds the cube's lock (it is being written)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases our lock
    return False


def _header_prefix(path: Path) -> bool:
    """Tell whether the file was cut inside its header (0 bytes, or a FITS header's start)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SIMPLE))
    except OSError:
        return False
    return _SIMPLE.startswith(head) or head.startswith(_SIMPLE)


def _set_aside(path: Path, side_tmp: Path, why: str, *, listed: int = 0) -> RecoverReport:
    aside = path.with_name(path.name + ASIDE_SUFFIX)
    try:
        os.replace(path, aside)
        if side_tmp.exists():
            os.replace(side_tmp, side_tmp.with_name(side_tmp.name + ASIDE_SUFFIX))
    except OSError as exc:
        return RecoverReport(source=path, ok=False, message=f"{why}; cannot set it aside: {exc}")
    lost = f" ({listed} frames listed in its sidecar are lost)" if listed else ""
    return RecoverReport(
        source=path, ok=True, message=f"{why}{lost}; set aside as {aside.name}", lost=listed
    )


def _rows(side_tmp: Path) -> FrameTimes | None:
    """Return the complete rows of a sidecar being written (None if none or unreadable)."""
    if not side_tmp.is_file():
        return None
    try:
        times = parse_sidecar(side_tmp.read_text(encoding="ascii"), complete_lines=True)
    except (OSError, UnicodeDecodeError, FitsFormatError) as exc:
        logger.warning("%s: unreadable sidecar, writing an empty timing table: %s", side_tmp, exc)
        return None
    return times if len(times) else None


def recover_tmp(path: Path, *, dry_run: bool = False) -> RecoverReport:
    """Recover one ``<name>.fits.tmp`` (or finish one orphan ``<stem>.txt.tmp``).

    Every complete frame on disk that has its sidecar row is kept (all complete
    frames when the sidecar is missing; their timing is then written as unknown):
    the file is truncated after them, ``NAXIS3``, the end-time cards and
    ``LOGDRPIN`` are rewritten in place, ``LOGCLOSE = 'recovered'``, padding to
    2880, then renamed to ``<name>.fits`` with a ``.txt`` of exactly NAXIS3 rows.

    A file a running logger is writing (it holds a lock on it) is left alone.
    A file with no complete frame (0 bytes or a cut header: a logger killed as
    the file appeared) is set aside as ``<name>.fits.tmp.aside`` with its
    sidecar, so later runs do not stumble on it.

    Parameters
    ----------
    path
        The ``.fits.tmp`` or ``.txt.tmp`` file.
    dry_run
        Only report what would be done.

    Returns
    -------
    RecoverReport
        Never raises for a bad file: the report says what is wrong and the
        file is left untouched.
    """
    path = Path(path)
    if path.name.endswith(TXT_TMP_SUFFIX):
        if dry_run:
            return RecoverReport(source=path, ok=True, message="would complete the sidecar")
        try:
            return _recover_sidecar_only(path)
        except OSError as exc:
            return RecoverReport(source=path, ok=False, message=f"cannot write: {exc}")
    if not path.name.endswith(FITS_TMP_SUFFIX):
        return RecoverReport(source=path, ok=False, message="not a .fits.tmp file; left as is")
    final = path.with_name(path.name.removesuffix(".tmp"))
    side_tmp = final.with_suffix(TXT_TMP_SUFFIX)
    if _locked(path):
        return RecoverReport(
            source=path, ok=True, message="being written by a running logger; left alone"
        )
    rows = _rows(side_tmp)
    try:
        cards, data_offset = read_header_cards(path)
        bitpix = _int_card(cards, "BITPIX", path)
        naxis = [_int_card(cards, f"NAXIS{i}", path) for i in (1, 2, 3)]
        size = path.stat().st_size
    except (FitsFormatError, RecoverError, OSError) as exc:
        if _header_prefix(path):
            if dry_run:
                return RecoverReport(source=path, ok=True, message="would set it aside (no header)")
            why = "no complete header (logger stopped as the file appeared)"
            return _set_aside(path, side_tmp, why, listed=len(rows) if rows else 0)
        return RecoverReport(source=path, ok=False, message=f"left as is: {exc}")
    if final.exists():
        return RecoverReport(source=path, ok=False, message=f"{final.name} already exists")
    frame_bytes = abs(bitpix) // 8 * naxis[0] * naxis[1]
    frames = min(naxis[2], max(0, size - data_offset) // max(frame_bytes, 1))
    if rows is not None:
        frames = min(frames, len(rows))
    listed = len(rows) if rows is not None else 0
    lost = max(0, listed - frames)
    if frames == 0:
        if dry_run:
            return RecoverReport(source=path, ok=True, message="would set it aside", lost=lost)
        return _set_aside(path, side_tmp, "no complete frame", listed=listed)
    if dry_run:
        return RecoverReport(
            source=path, ok=True, message=f"would keep {frames} frames",
            frames=frames, lost=lost,
        )  # fmt: skip
    times = rows.truncated(frames) if rows is not None else None
    replace: dict[str, str] = {
        "NAXIS3": format_card("NAXIS3", frames, "frames in this cube"),
        "LOGCLOSE": format_card("LOGCLOSE", "recovered ", "why the cube closed"),
    }
    if times is not None:
        source = "logger" if _str_card(cards, "LOGTSRC") == "LOG" else "acquisition"
        clock = times.logger_time if source == "logger" else times.acquisition_time
        for name, value, comment in timing_cards(
            float(clock[0]), float(clock[-1]), written=0.0, source=source
        ):
            if name in _TIMING:
                replace[name] = format_card(name, value, comment)
        gaps = np.diff(times.cnt0)
        inside = int(np.sum(gaps[gaps > 1] - 1))
        replace["LOGDRPIN"] = format_card("LOGDRPIN", inside, "frames missed inside this cube")
    end = data_offset + frames * frame_bytes
    try:
        with path.open("r+b") as fh:
            for index, card in enumerate(cards):
                new = replace.get(card_name(card))
                if new is not None:
                    fh.seek(index * CARD)
                    fh.write(new.encode("ascii"))
            fh.truncate(end)
            fh.truncate(end + (-end % BLOCK))  # zero padding, sparse: needs no free space
            fh.flush()
            os.fsync(fh.fileno())
        # sidecar first: if the disk is full, the (now valid) .fits.tmp stays for a re-run
        sidecar = final.with_suffix(".txt")
        note = f"recovered by vampires: {frames} complete frames kept, {lost} lost"
        text = format_sidecar(
            times if times is not None else _unknown_times(frames),
            stream=final.name.rpartition("_")[0],
            fits_name=final.name,
            notes=(note,) if times is not None else (note, "frame timing was lost (-1 / 0)"),
        )
        _write_text(sidecar, text)
        os.replace(path, final)
        side_tmp.unlink(missing_ok=True)
        side_tmp.with_name(side_tmp.name + ".part").unlink(missing_ok=True)
    except OSError as exc:
        return RecoverReport(source=path, ok=False, message=f"cannot recover: {exc}", lost=lost)
    message = f"{final.name}: {frames} frames kept" + (
        f", {lost} incomplete dropped" if lost else ""
    )
    return RecoverReport(
        source=path, ok=True, message=message, path=final, sidecar=sidecar, frames=frames,
        lost=lost,
    )  # fmt: skip


def _cube_tmp(side_tmp: Path) -> Path:
    return side_tmp.with_name(side_tmp.name.removesuffix(TXT_TMP_SUFFIX) + FITS_TMP_SUFFIX)


def recover_folder(folder: Path, *, dry_run: bool = False) -> list[RecoverReport]:
    """Recover every ``.fits.tmp`` and orphan ``.txt.tmp`` under a folder (recursively).

    Parameters
    ----------
    folder
        A cube folder or any parent (e.g. the night's folder).
    dry_run
        Only report what would be done.

    Returns
    -------
    list of RecoverReport
        One per ``.tmp`` found, cubes first.

    Raises
    ------
    RecoverError
        ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = f"{folder} is not a folder"
        raise RecoverError(msg)
    reports = [recover_tmp(p, dry_run=dry_run) for p in sorted(folder.rglob(f"*{FITS_TMP_SUFFIX}"))]
    reports += [
        recover_tmp(p, dry_run=dry_run)
        for p in sorted(folder.rglob(f"*{TXT_TMP_SUFFIX}"))
        if p.exists() and not _locked(_cube_tmp(p))  # a cube being written: reported with it
    ]
    return reports
