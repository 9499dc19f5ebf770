"""The ``fitswatcher`` panel: rich rendering of folder summaries and the live loop.

The panel reproduces the operating page's screen line for line::

    ╭─ FITS Watcher - 2024-06-13T00:11:20.347365 ───────────────────────────────╮
    │ /mnt/fuuu/20240611/vcam1/ - 8 FITS files (29 GB)                           │
    │   vcam1_00:00:03.628172287.fits - (1000, 1104, 2228) 4919 MB | DARK scexao │

Sizes are decimal and come from the files on disk: MB = bytes / 1e6 and
GB = bytes / 1e9, rounded to whole units (one decimal below 10, ``<0.1`` below
that, so small files and folders do not all read "0"). Flags add colour, and a short note
after the line they concern (a big cube only colours its size, so the
sample's lines keep their exact text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from vampires.watch.watcher import FileSummary, Flag, FolderSummary

if TYPE_CHECKING:
    from vampires.watch.watcher import Stoppable, Watcher

__all__ = [
    "STYLES",
    "file_line",
    "folder_line",
    "format_duration",
    "format_gb",
    "format_mb",
    "render_panel",
    "run_live",
    "title",
]

#: Colours of the panel, by role (rich style strings).
STYLES = {
    "folder": "bold cyan",
    "waiting": "dim italic",
    "error": "bold red",
    "big": "bold yellow",
    "dropped": "bold red",
    "mismatch": "bold magenta",
    "stalled": "bold red",
    "writing": "bold green",
}


def _decimal(value: float, unit: str) -> str:
    if value == 0 or value >= 10:
        return f"{value:.0f} {unit}"
    if value < 0.05:
        return f"<0.1 {unit}"
    return f"{value:.1f} {unit}"


def format_mb(nbytes: int) -> str:
    """Format a size in decimal megabytes as the panel shows it (``"4919 MB"``).

    Parameters
    ----------
    nbytes
        Size in bytes.

    Returns
    -------
    str
        Whole MB (one decimal below 10 MB, ``"<0.1 MB"`` for tiny files).
    """
    return _decimal(nbytes / 1e6, "MB")


def format_gb(nbytes: int) -> str:
    """Format a size in decimal gigabytes as the panel shows it (``"29 GB"``).

    Parameters
    ----------
    nbytes
        Size in bytes.

    Returns
    -------
    str
        Whole GB (one decimal below 10 GB, ``"<0.1 GB"`` for tiny folders).
    """
    return _decimal(nbytes / 1e9, "GB")


def format_duration(seconds: float) -> str:
    """Format a duration for humans: ``"45 s"``, ``"6 min"``, ``"2.5 h"``.

    Parameters
    ----------
    seconds
        Duration in seconds.

    Returns
    -------
    str
        The duration in the largest fitting unit.
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def title(now: dt.datetime) -> str:
    """Return the panel title, ``FITS Watcher - <ISO time with microseconds>``.

    Parameters
    ----------
    now
        The time to show (local time for the live panel).

    Returns
    -------
    str
        The title text.
    """
    return f"FITS Watcher - {now.isoformat(timespec='microseconds')}"


def folder_line(folder: FolderSummary) -> Text:
    """Return the folder's line: ``<path>/ - <N> FITS files (<X> GB)`` plus its flags.

    Parameters
    ----------
    folder
        One folder summary.

    Returns
    -------
    Text
        The styled line.
    """
    if not folder.exists:
        if folder.is_glob:
            return Text(f"{folder.pattern} - waiting: no folder matches yet", STYLES["waiting"])
        return Text(f"{folder.path}/ - waiting: folder does not exist yet", STYLES["waiting"])
    if folder.error is not None:
        return Text(f"{folder.path}/ - {folder.error}", STYLES["error"])
    line = Text()
    line.append(f"{folder.path}/", STYLES["folder"])
    line.append(f" - {folder.n_files} FITS files ({format_gb(folder.nbytes)})")
    if Flag.STALLED in folder.flags and folder.idle is not None:
        note = f"  ◂ no new file for {format_duration(folder.idle)}"
        if folder.expected_interval is not None:
            note += f" (expected every ~{format_duration(folder.expected_interval)})"
        line.append(note, STYLES["stalled"])
    return line


def file_line(file: FileSummary) -> Text:
    """Return one file's line: ``  <name> - (<n3>, <n2>, <n1>) <M> MB | <DATA-TYP> <OBSERVER>``.

    Parameters
    ----------
    file
        One file summary.

    Returns
    -------
    Text
        The styled line, with notes for errors and flags.
    """
    line = Text(f"  {file.name} - ")
    size_style = STYLES["big"] if Flag.BIG in file.flags else ""
    if file.writing and not file.shape:
        line.append(f"writing, no frame on disk yet ({format_mb(file.nbytes)})", STYLES["writing"])
        return line
    if not file.shape and file.error is not None:
        line.append(file.error, STYLES["error"])
        line.append(" (")
        line.append(format_mb(file.nbytes), size_style)
        line.append(")")
        return line
    mismatch = STYLES["mismatch"]
    shape_style = mismatch if Flag.SHAPE_MISMATCH in file.flags else ""
    type_style = mismatch if Flag.TYPE_MISMATCH in file.flags else ""
    line.append(f"({', '.join(map(str, file.shape))})", shape_style)
    line.append(" ")
    line.append(format_mb(file.nbytes), size_style)
    line.append(" | ")
    line.append(file.data_type if file.data_type is not None else "-", type_style)
    line.append(f" {file.observer if file.observer is not None else '-'}")
    notes: list[tuple[str, str]] = []
    if file.error is not None:
        notes.append((file.error, STYLES["error"]))
    if Flag.DROPPED in file.flags:
        notes.append((f"{file.dropped} frames dropped", STYLES["dropped"]))
    if Flag.SHAPE_MISMATCH in file.flags:
        notes.append(("shape differs", mismatch))
    if Flag.TYPE_MISMATCH in file.flags:
        notes.append(("DATA-TYP differs", mismatch))
    if file.writing:
        notes.insert(0, (f"writing: {file.shape[0]} frames so far", STYLES["writing"]))
    for note, style in notes:
        line.append(f"  ◂ {note}", style)
    return line


def render_panel(folders: Iterable[FolderSummary], *, now: dt.datetime) -> Panel:
    """Render one scan as the ``fitswatcher`` panel.

    Parameters
    ----------
    folders
        The result of :meth:`Watcher.scan`.
    now
        Time shown in the title.

    Returns
    -------
    Panel
        A rounded panel, title on the left, one block of lines per folder
        separated by blank lines.
    """
    body = Text()
    for i, folder in enumerate(folders):
        if i:
            body.append("\n\n")
        body.append_text(folder_line(folder))
        for file in folder.files:
            body.append("\n")
            body.append_text(file_line(file))
    return Panel(body, title=title(now), title_align="left", box=box.ROUNDED, expand=False)


def run_live(
    watcher: Watcher,
    *,
    interval: float = 1.0,
    console: Console | None = None,
    stop: Stoppable | None = None,
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> None:
    """Show the panel in place and refresh it every ``interval`` seconds until stopped.

    Parameters
    ----------
    watcher
        The watcher to scan.
    interval
        Seconds between refreshes.
    console
        Where to draw (a new terminal console by default).
    stop
        Returns when ``stop.is_set()``; Ctrl-C raises ``KeyboardInterrupt``
        after the live display has been closed cleanly.
    now
        Clock for the title (local time by default).
    """
    console = console if console is not None else Console()
    with Live(console=console, auto_refresh=False, redirect_stdout=False) as live:
        for folders in watcher.watch(stop=stop, interval=interval):
            live.update(render_panel(folders, now=now()), refresh=True)
