"""Watch folders for FITS cubes: one summary per folder, headers only, cached.

A :class:`Watcher` turns folder patterns (``/mnt/fuuu/20240611/vcam*``) into
:class:`FolderSummary` values, one per folder, each with the ``n`` newest
:class:`FileSummary` values. A refresh costs one directory listing (plus a
``stat`` per FITS file): headers are read only for files that are new or whose
(mtime, size) changed, and only their header blocks are read (see
:mod:`vampires.watch.headers`). Nothing here imports astropy or numpy.

Patterns
    A folder, or a glob of folders. Globs are expanded again at every scan, so
    a folder that appears later is picked up; a pattern that matches nothing
    yet (the shell passes ``vcam*`` literally when nothing matches) and a
    folder that does not exist yet are shown as *waiting*. When the shell has
    already expanded ``vcam*`` to ``vcam1`` only, ``vcam2`` would be missed:
    with ``siblings=True`` (the default), a literal folder whose name ends in
    digits (``vcam1``) also watches its siblings with the same stem and any
    digits (``vcam2``, ``vcam10``).

Flags (:class:`Flag`) mark what operators care about: a cube over 2 GB,
frames dropped by our logger (``LOGDROP``/``LOGDRPIN`` header keywords), the
newest cubes of the cameras differing in frame shape or ``DATA-TYP``, and a
folder with no new file for longer than expected while others advance.

Example
-------
>>> w = Watcher(["/mnt/fuuu/ARCHIVED_DATA/20240611/vcam*"], n=3)  # doctest: +SKIP
>>> for folders in w.watch(stop=stop_event, interval=1.0):  # doctest: +SKIP
...     print([f.n_files for f in folders])
"""

from __future__ import annotations

import datetime as dt
import enum
import glob
import itertools
import logging
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from vampires._checks import check_int, check_positive
from vampires.errors import ConfigError, FitsFormatError
from vampires.watch.headers import CubeHeader, read_cube_header

if TYPE_CHECKING:
    from vampires.config import Config

__all__ = [
    "FITS_SUFFIXES",
    "WRITING_SUFFIX",
    "FileSummary",
    "Flag",
    "FolderSummary",
    "ScanStats",
    "Stoppable",
    "Watcher",
    "is_fits_name",
    "snapshot_dict",
    "tonight_pattern",
]

logger = logging.getLogger(__name__)

#: File names the watcher lists as cubes; ``.txt`` sidecars and every other file are
#: ignored, except a cube being written (:data:`WRITING_SUFFIX`).
FITS_SUFFIXES = (".fits", ".fits.fz")
#: A cube our logger is writing (``<name>.fits.tmp``): shown as the newest line of its
#: folder, with its frame count so far and :attr:`Flag.WRITING`.
WRITING_SUFFIX = ".fits.tmp"
_GLOB_MAGIC = re.compile(r"[*?\[]")
_TRAILING_DIGITS = re.compile(r"^(.*\D)\d+$")
#: How many recent files give a folder's typical interval between cubes.
_CADENCE_FILES = 10


class Flag(enum.StrEnum):
    """Something an operator should look at, attached to the line it concerns."""

    BIG = "big"
    """The cube is larger than the big-cube limit (2 GB by default)."""
    DROPPED = "dropped"
    """The logger reported frames dropped before or inside this cube."""
    SHAPE_MISMATCH = "shape-mismatch"
    """This camera's newest cube has another frame shape than the other cameras'."""
    TYPE_MISMATCH = "type-mismatch"
    """This camera's newest cube has another ``DATA-TYP`` than the other cameras'."""
    STALLED = "stalled"
    """No new file for longer than expected while other folders advance."""
    WRITING = "writing"
    """A cube being written (``.fits.tmp``); its shape counts the frames on disk so far."""


class Stoppable(Protocol):
    """Anything with ``is_set()``, such as :class:`threading.Event`."""

    def is_set(self) -> bool:
        """Return True when the loop must stop."""
        ...


def is_fits_name(name: str) -> bool:
    """Tell whether a file name is one the watcher lists (``*.fits``, ``*.fits.fz``).

    Parameters
    ----------
    name
        A file name (no folder).

    Returns
    -------
    bool
        True for FITS names; False for ``.tmp``, ``.txt`` and anything else.
    """
    return name.endswith(FITS_SUFFIXES)


@attrs.frozen(kw_only=True)
class FileSummary:
    """One FITS file as the watcher shows it.

    Attributes
    ----------
    name
        File name.
    path
        Full path.
    shape
        Image shape in numpy order ``(NAXIS3, NAXIS2, NAXIS1)``; ``()`` if unknown.
    nbytes
        Size on disk (what ``ls -l`` shows); the panel prints it in MB.
    data_type, observer
        ``DATA-TYP`` and ``OBSERVER`` header values, None when absent.
    mtime
        Modification time, Unix seconds.
    dropped
        Frames dropped according to the logger's header keywords (0 if none).
    compressed
        True for a tile-compressed (``.fits.fz``) image.
    error
        A short reason when the file could not be read or is truncated, else None.
    flags
        :class:`Flag` values for this file.
    writing
        True for a cube being written (``.fits.tmp``, :attr:`Flag.WRITING`):
        ``shape[0]`` is the frames on disk so far.
    """

    name: str
    path: Path
    shape: tuple[int, ...] = ()
    nbytes: int = 0
    data_type: str | None = None
    observer: str | None = None
    mtime: float = 0.0
    dropped: int = 0
    compressed: bool = False
    error: str | None = None
    flags: frozenset[Flag] = frozenset()
    writing: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (paths as str, flags as a sorted list)."""
        return {
            "writing": self.writing,
            "name": self.name,
            "path": str(self.path),
            "shape": list(self.shape),
            "nbytes": self.nbytes,
            "data_type": self.data_type,
            "observer": self.observer,
            "mtime": self.mtime,
            "dropped": self.dropped,
            "compressed": self.compressed,
            "error": self.error,
            "flags": sorted(self.flags),
        }


@attrs.frozen(kw_only=True)
class FolderSummary:
    """One watched folder: counts, total size and its newest files.

    Attributes
    ----------
    path
        The folder as matched (the pattern itself when waiting for a glob).
    pattern
        The pattern that produced this folder.
    exists
        False while the folder (or any match of the glob) does not exist yet.
    n_files
        Number of FITS files in the folder (cubes being written not counted).
    nbytes
        Total size of those files on disk.
    files
        The newest files, newest first (by modification time, not name); cubes
        being written first of all.
    newest_mtime
        Modification time of the newest FITS file (a cube being written
        included), None when there is none.
    idle
        Seconds since the newest file was modified, at scan time.
    expected_interval
        Typical seconds between new files (median of recent gaps), if known.
    error
        A short reason when the folder exists but cannot be listed.
    flags
        :class:`Flag` values for the folder (``STALLED``).
    """

    path: Path
    pattern: str
    exists: bool = True
    n_files: int = 0
    nbytes: int = 0
    files: tuple[FileSummary, ...] = ()
    newest_mtime: float | None = None
    idle: float | None = None
    expected_interval: float | None = None
    error: str | None = None
    flags: frozenset[Flag] = frozenset()

    @property
    def is_glob(self) -> bool:
        """True when this entry waits for a glob pattern to match a folder."""
        return bool(_GLOB_MAGIC.search(self.pattern)) and not self.exists

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (paths as str, files as dicts)."""
        return {
            "path": str(self.path),
            "pattern": self.pattern,
            "exists": self.exists,
            "n_files": self.n_files,
            "nbytes": self.nbytes,
            "newest_mtime": self.newest_mtime,
            "idle": self.idle,
            "expected_interval": self.expected_interval,
            "error": self.error,
            "flags": sorted(self.flags),
            "files": [f.to_dict() for f in self.files],
        }


@attrs.frozen(kw_only=True)
class ScanStats:
    """What the last :meth:`Watcher.scan` cost.

    Attributes
    ----------
    folders, files
        Folders listed and FITS files seen.
    headers_read
        Files whose headers were read (new or changed); the others came from the cache.
    bytes_read
        Bytes read from files by this scan (header blocks only).
    duration
        Wall-clock seconds of the scan.
    """

    folders: int = 0
    files: int = 0
    headers_read: int = 0
    bytes_read: int = 0
    duration: float = 0.0


def snapshot_dict(folders: Iterable[FolderSummary], *, time_iso: str) -> dict[str, Any]:
    """Return one scan as a JSON-ready dict, as ``fitswatcher --json`` prints it.

    Parameters
    ----------
    folders
        The result of :meth:`Watcher.scan`.
    time_iso
        The snapshot's time as an ISO string.

    Returns
    -------
    dict
        ``{"time": ..., "folders": [FolderSummary.to_dict(), ...]}``.
    """
    return {"time": time_iso, "folders": [f.to_dict() for f in folders]}


# (mtime_ns, size) -> header or error reason
_CacheEntry = tuple[int, int, CubeHeader | str]


@attrs.define(kw_only=True)
class _Listing:
    """One folder's FITS files (internal): name, path, mtime_ns, size."""

    pattern: str
    path: Path
    exists: bool = True
    error: str | None = None
    entries: list[tuple[str, str, int, int]] = attrs.field(factory=list)
    writing: list[tuple[str, str, int, int]] = attrs.field(factory=list)


def tonight_pattern(*, config: Config | None = None, now: dt.datetime | None = None) -> str:
    """Return the glob of tonight's camera folders: ``<archive root>/<UT date>/vcam*``.

    Parameters
    ----------
    config
        Settings giving the archive root; default :meth:`Config.load`.
    now
        The time whose UT date names the night; default now.

    Returns
    -------
    str
        E.g. ``/mnt/fuuu/ARCHIVED_DATA/20240611/vcam*`` (``fitswatcher --tonight``).
    """
    from vampires.config import Config

    cfg = config if config is not None else Config.load()
    when = now if now is not None else dt.datetime.now(dt.UTC)
    night = when.astimezone(dt.UTC).strftime("%Y%m%d")
    return str(cfg.archive_root / night / "vcam*")


def _parse_patterns(patterns: object) -> tuple[str, ...]:
    if isinstance(patterns, str | os.PathLike):
        patterns = [patterns]
    if not isinstance(patterns, Iterable):
        msg = f"Watcher: patterns must be a folder, a glob or a list of them (got {patterns!r})"
        raise ConfigError(msg)
    parsed: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str | os.PathLike):
            msg = f"Watcher: pattern {pattern!r} is not a path or glob string"
            raise ConfigError(msg)
        text = os.fspath(pattern)
        if not isinstance(text, str) or not text.strip():
            msg = f"Watcher: empty pattern in {patterns!r}; give a folder or a glob"
            raise ConfigError(msg)
        text = os.path.expanduser(text)  # '~/night/vcam*' quoted, so the shell left '~'
        if not _GLOB_MAGIC.search(text) and os.path.exists(text) and not os.path.isdir(text):
            msg = (
                f"Watcher: {text!r} is a file, not a folder; "
                f"watch the folder that holds it ({os.path.dirname(text) or '.'!r})"
            )
            raise ConfigError(msg)
        parsed.append(text)
    if not parsed:
        msg = "Watcher: no pattern given; pass at least one folder or glob (e.g. '<night>/vcam*')"
        raise ConfigError(msg)
    return tuple(parsed)


class Watcher:
    """Summarise the FITS files arriving in folders, reading headers only.

    Parameters
    ----------
    patterns
        A folder or glob, or several (``"/mnt/fuuu/20240611/vcam*"``).
    n
        Newest files kept per folder (default 2).
    siblings
        Also watch siblings ``<stem><digits>`` of a literal folder named
        ``<stem><digits>`` (so ``vcam2`` appearing later is picked up when the
        shell expanded ``vcam*`` to ``vcam1``).
    big_cube_nbytes
        Files larger than this get :attr:`Flag.BIG` (default 2 GB).
    stall_factor, stall_min
        A folder is :attr:`Flag.STALLED` when its newest file is older than
        ``max(stall_factor * expected_interval, stall_min)`` seconds while
        another folder advances.
    shape_tolerance
        Relative difference of frame height or width below which two cameras'
        frames count as the same shape (vcam1 and vcam2 crops differ by a few
        pixels by design: 2228 vs 2232).
    clock
        Returns the current Unix time (tests inject one).

    Raises
    ------
    ConfigError
        No pattern, an empty pattern, a pattern naming a file, or a bad number.

    Notes
    -----
    A watcher keeps a header cache and is not thread-safe: use one per thread.
    """

    def __init__(
        self,
        patterns: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        n: int = 2,
        *,
        siblings: bool = True,
        big_cube_nbytes: int = 2_000_000_000,
        stall_factor: float = 3.0,
        stall_min: float = 30.0,
        shape_tolerance: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._patterns = _parse_patterns(patterns)
        self._n = check_int(n, "Watcher: 'n'", 0)
        self._siblings = bool(siblings)
        self._big = check_int(big_cube_nbytes, "Watcher: 'big_cube_nbytes'", 1)
        self._stall_factor = check_positive(stall_factor, "Watcher: 'stall_factor'")
        self._stall_min = check_positive(stall_min, "Watcher: 'stall_min'")
        self._shape_tolerance = check_positive(shape_tolerance, "Watcher: 'shape_tolerance'")
        self._clock = clock
        self._cache: dict[str, _CacheEntry] = {}
        self._stats = ScanStats()

    def __repr__(self) -> str:
        return f"vampires.Watcher({list(self._patterns)!r}, n={self._n})"

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns as given."""
        return self._patterns

    @property
    def n(self) -> int:
        """Newest files kept per folder."""
        return self._n

    @property
    def last_stats(self) -> ScanStats:
        """What the last scan cost (files, headers read, bytes read, time)."""
        return self._stats

    # -- folders -------------------------------------------------------------------------

    def _folders(self) -> list[tuple[str, Path | None]]:
        """Expand the patterns now: (pattern, folder) pairs, folder None while waiting."""
        found: list[tuple[str, Path | None]] = []
        seen: set[str] = set()

        def add(pattern: str, folder: str) -> None:
            key = os.path.normpath(folder)
            if key not in seen:
                seen.add(key)
                found.append((pattern, Path(folder)))

        for pattern in self._patterns:
            if _GLOB_MAGIC.search(pattern):
                matches = sorted(m for m in glob.glob(pattern) if os.path.isdir(m))
                for match in matches:
                    add(pattern, match)
                if not matches:
                    found.append((pattern, None))
                continue
            stem = _TRAILING_DIGITS.match(os.path.basename(os.path.normpath(pattern)))
            if self._siblings and stem is not None:
                parent = os.path.dirname(os.path.normpath(pattern))
                prefix = stem.group(1)
                names = glob.glob(glob.escape(os.path.join(parent, prefix)) + "[0-9]*")
                sibs = [
                    m
                    for m in names
                    if os.path.basename(m)[len(prefix) :].isdigit() and os.path.isdir(m)
                ]
                literal = os.path.normpath(pattern)
                for folder in sorted({*sibs, literal} if os.path.isdir(literal) else sibs):
                    add(pattern, folder)
                if not os.path.isdir(literal) and os.path.normpath(literal) not in seen:
                    found.append((pattern, None))
                continue
            if os.path.isdir(pattern):
                add(pattern, pattern)
            else:
                found.append((pattern, None))
        return found

    @staticmethod
    def _list(pattern: str, folder: Path) -> _Listing:
        listing = _Listing(pattern=pattern, path=folder)
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    writing = entry.name.endswith(WRITING_SUFFIX)
                    if not writing and not is_fits_name(entry.name):
                        continue
                    try:
                        if not entry.is_file():
                            continue
                        st = entry.stat()
                    except FileNotFoundError:  # renamed or removed while listing
                        continue
                    row = (entry.name, entry.path, st.st_mtime_ns, st.st_size)
                    (listing.writing if writing else listing.entries).append(row)
        except FileNotFoundError:
            listing.exists = False
        except NotADirectoryError:
            listing.error = "not a folder"
        except OSError as exc:
            listing.error = f"cannot list: {exc.strerror or exc}"
        return listing

    # -- files ---------------------------------------------------------------------------

    def _header(self, path: str, mtime_ns: int, size: int) -> tuple[CubeHeader | str, int]:
        """Header (or error reason) from the cache or the file; bytes read."""
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime_ns and cached[1] == size:
            return cached[2], 0
        try:
            result: CubeHeader | str = read_cube_header(path, size=size)
        except FitsFormatError as exc:
            logger.debug("%s: %s", path, exc)
            result = str(exc)
        self._cache[path] = (mtime_ns, size, result)
        return result, result.bytes_read if isinstance(result, CubeHeader) else 0

    def _writing_summary(
        self, name: str, path: str, mtime_ns: int, size: int, header: CubeHeader | str
    ) -> FileSummary:
        """Summarise a cube being written: frames on disk so far, never 'truncated'."""
        flags = {Flag.WRITING}
        if isinstance(header, str) or len(header.shape) != 3 or not header.shape[0]:
            # just created (header not complete yet) or not one of our cubes
            return FileSummary(
                name=name, path=Path(path), nbytes=size, mtime=mtime_ns / 1e9,
                flags=frozenset(flags), writing=True,
            )  # fmt: skip
        planned, height, width = header.shape
        frame_bytes = header.data_nbytes // planned
        header_bytes = header.min_file_nbytes - header.data_nbytes
        frames = min(planned, max(0, size - header_bytes) // max(frame_bytes, 1))
        if header.dropped > 0:
            flags.add(Flag.DROPPED)
        return FileSummary(
            name=name,
            path=Path(path),
            shape=(frames, height, width),
            nbytes=size,
            data_type=header.data_type,
            observer=header.observer,
            mtime=mtime_ns / 1e9,
            dropped=header.dropped,
            flags=frozenset(flags),
            writing=True,
        )

    def _file_summary(
        self, name: str, path: str, mtime_ns: int, size: int, header: CubeHeader | str
    ) -> FileSummary:
        flags: set[Flag] = set()
        if size > self._big:
            flags.add(Flag.BIG)
        if isinstance(header, str):
            return FileSummary(
                name=name,
                path=Path(path),
                nbytes=size,
                mtime=mtime_ns / 1e9,
                error=header,
                flags=frozenset(flags),
            )
        error = None
        if size < header.min_file_nbytes:
            error = f"truncated: {size:,} of {header.min_file_nbytes:,} bytes on disk"
        if header.dropped > 0:
            flags.add(Flag.DROPPED)
        return FileSummary(
            name=name,
            path=Path(path),
            shape=header.shape,
            nbytes=size,
            data_type=header.data_type,
            observer=header.observer,
            mtime=mtime_ns / 1e9,
            dropped=header.dropped,
            compressed=header.compressed,
            error=error,
            flags=frozenset(flags),
        )

    # -- scan ----------------------------------------------------------------------------

    def scan(self) -> list[FolderSummary]:
        """List the folders now and summarise their newest FITS files.

        Returns
        -------
        list of FolderSummary
            One per folder, in pattern order (glob matches sorted by path);
            a pattern or folder that does not exist yet gives one entry with
            ``exists=False``.
        """
        start = time.perf_counter()
        now = self._clock()
        summaries: list[FolderSummary] = []
        seen: set[str] = set()
        headers_read = bytes_read = n_files = 0
        for pattern, folder in self._folders():
            if folder is None:
                summaries.append(FolderSummary(path=Path(pattern), pattern=pattern, exists=False))
                continue
            listing = self._list(pattern, folder)
            if not listing.exists or listing.error is not None:
                summaries.append(
                    FolderSummary(
                        path=folder, pattern=pattern, exists=listing.exists, error=listing.error
                    )
                )
                continue
            entries = listing.entries
            entries.sort(key=lambda e: (e[2], e[0]), reverse=True)  # newest first, by mtime
            writing = sorted(listing.writing, key=lambda e: (e[2], e[0]), reverse=True)
            n_files += len(entries)
            seen.update(e[1] for e in entries)
            seen.update(e[1] for e in writing)
            files = []
            for name, path, mtime_ns, size in writing[: self._n]:
                header, nread = self._header(path, mtime_ns, size)
                headers_read += nread > 0
                bytes_read += nread
                files.append(self._writing_summary(name, path, mtime_ns, size, header))
            for name, path, mtime_ns, size in entries[: self._n - len(files)]:
                header, nread = self._header(path, mtime_ns, size)
                headers_read += nread > 0
                bytes_read += nread
                files.append(self._file_summary(name, path, mtime_ns, size, header))
            mtimes = [e[2] for e in entries[:1] + writing[:1]]
            newest = max(mtimes) / 1e9 if mtimes else None
            recent = [e[2] / 1e9 for e in entries[:_CADENCE_FILES]]
            gaps = [a - b for a, b in itertools.pairwise(recent)]
            summaries.append(
                FolderSummary(
                    path=folder,
                    pattern=pattern,
                    n_files=len(entries),
                    nbytes=sum(e[3] for e in entries),
                    files=tuple(files),
                    newest_mtime=newest,
                    idle=None if newest is None else max(0.0, now - newest),
                    expected_interval=statistics.median(gaps) if gaps else None,
                )
            )
        # forget files that are gone
        for path in [p for p in self._cache if p not in seen]:
            del self._cache[path]
        summaries = self._flag_mismatches(self._flag_stalls(summaries))
        self._stats = ScanStats(
            folders=sum(s.exists for s in summaries),
            files=n_files,
            headers_read=headers_read,
            bytes_read=bytes_read,
            duration=time.perf_counter() - start,
        )
        return summaries

    def watch(
        self, *, stop: Stoppable | None = None, interval: float = 1.0
    ) -> Iterator[list[FolderSummary]]:
        """Scan now and then every ``interval`` seconds, yielding each result.

        Parameters
        ----------
        stop
            Anything with ``is_set()`` (e.g. :class:`threading.Event`): the
            generator returns at the next check once it is set (checked at
            least every 0.1 s while waiting).
        interval
            Seconds between the end of one scan and the start of the next.

        Yields
        ------
        list of FolderSummary
            The result of :meth:`scan`, every interval (even when nothing
            changed, so a panel can refresh its clock and stall flags).

        Raises
        ------
        ConfigError
            ``interval`` is not a finite number > 0.

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) is not caught: it leaves the generator
        and reaches the caller, which decides how to exit (``fitswatcher``
        exits with status 0 and no traceback).
        """
        wait = check_positive(interval, "Watcher: 'interval'")
        while stop is None or not stop.is_set():
            yield self.scan()
            deadline = time.monotonic() + wait
            while (remaining := deadline - time.monotonic()) > 0:
                if stop is not None and stop.is_set():
                    return
                time.sleep(min(remaining, 0.1))

    # -- flags across folders ------------------------------------------------------------

    def _stall_limit(self, expected: float | None) -> float:
        return max(self._stall_factor * (expected or 0.0), self._stall_min)

    def _flag_stalls(self, summaries: list[FolderSummary]) -> list[FolderSummary]:
        """Flag folders silent for longer than expected while another folder advances."""
        active = [s for s in summaries if s.idle is not None]
        advancing = [
            s
            for s in active
            if s.idle is not None and s.idle <= self._stall_limit(s.expected_interval)
        ]
        if not advancing:
            return summaries
        typical = [s.expected_interval for s in advancing if s.expected_interval is not None]
        fallback = statistics.median(typical) if typical else None
        out = []
        for s in summaries:
            if s.idle is not None and s not in advancing:
                expected = s.expected_interval if s.expected_interval is not None else fallback
                if expected is not None and s.idle > self._stall_limit(expected):
                    s = attrs.evolve(s, expected_interval=expected, flags=s.flags | {Flag.STALLED})
            out.append(s)
        return out

    def _same_frame(self, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        if len(a) != len(b):
            return False
        # frame axes only: a partial cube has fewer frames (NAXIS3) by design
        return all(
            abs(x - y) <= self._shape_tolerance * max(x, y)
            for x, y in zip(a[-2:], b[-2:], strict=True)
        )

    def _flag_mismatches(self, summaries: list[FolderSummary]) -> list[FolderSummary]:
        """Flag the newest readable cube of cameras that disagree with the others.

        With three or more cameras the majority wins (only the odd ones out are
        flagged); with two, both are.
        """
        heads: list[tuple[int, int]] = []  # (folder index, file index)
        for i, folder in enumerate(summaries):
            for j, file in enumerate(folder.files):
                if file.shape and file.error is None and file.shape[0]:
                    heads.append((i, j))
                    break
        if len(heads) < 2:
            return summaries
        out = list(summaries)
        checks: tuple[tuple[Flag, Callable[[FileSummary, FileSummary], bool]], ...] = (
            (Flag.SHAPE_MISMATCH, lambda x, y: self._same_frame(x.shape, y.shape)),
            (Flag.TYPE_MISMATCH, lambda x, y: x.data_type == y.data_type),
        )
        newest = [summaries[i].files[j] for i, j in heads]
        for flag, same in checks:
            agree = [sum(same(x, y) for y in newest) - 1 for x in newest]
            if all(a == len(heads) - 1 for a in agree):
                continue
            best = max(agree)
            for (i, j), a in zip(heads, agree, strict=True):
                if a < best or best == 0:
                    files = list(out[i].files)
                    files[j] = attrs.evolve(files[j], flags=files[j].flags | {flag})
                    out[i] = attrs.evolve(out[i], files=tuple(files))
        return out
