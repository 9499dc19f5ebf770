"""Watch the night's folders for FITS cubes, reading headers only.

:class:`Watcher` scans folders (or globs of folders) and returns one
:class:`FolderSummary` per folder with its newest :class:`FileSummary`
values; :mod:`vampires.watch.tui` renders them as the ``fitswatcher`` panel.
Neither imports astropy, numpy or numba.
"""

from __future__ import annotations

from vampires.watch.headers import CubeHeader, read_cube_header
from vampires.watch.watcher import (
    FileSummary,
    Flag,
    FolderSummary,
    ScanStats,
    Watcher,
    snapshot_dict,
    tonight_pattern,
)

__all__ = [
    "CubeHeader",
    "FileSummary",
    "Flag",
    "FolderSummary",
    "ScanStats",
    "Watcher",
    "read_cube_header",
    "snapshot_dict",
    "tonight_pattern",
]
