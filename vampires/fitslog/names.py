"""File names and folders of logged cubes (contract 3 of the design).

* name: ``<stream>_HH:MM:SS.nnnnnnnnn.fits`` from the UTC time of the cube's
  first frame (nanoseconds, zero-padded); the sidecar is the same stem + ``.txt``;
* folder: ``<root>/<YYYYMMDD>/<stream>/`` where the date is the UT date of that
  cube's first frame (so a cube started after 00:00 UT lands in the new date's
  folder), or an exact folder (``dirname`` mode);
* while being written: ``<name>.fits.tmp`` and ``<stem>.txt.tmp`` in the same
  folder, so ``*.fits`` globs (fitswatcher, scxkw) never see a half file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from vampires.errors import ConfigError
from vampires.stream.names import check_stream_name as _check_stream_name

__all__ = [
    "FITS_TMP_SUFFIX",
    "TXT_TMP_SUFFIX",
    "check_folder",
    "check_stream_name",
    "cube_filename",
    "cube_folder",
    "parse_cube_filename",
    "sidecar_path",
    "tmp_path",
]

FITS_TMP_SUFFIX = ".fits.tmp"
TXT_TMP_SUFFIX = ".txt.tmp"
_NAME = re.compile(r"^(?P<stream>.+)_(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)\.(?P<ns>\d{9})\.fits$")


def check_folder(folder: str | os.PathLike[str], who: str) -> Path:
    """Create ``folder`` if needed and check that this user can write files in it.

    What ``vampires logger start -d``/``--root``, ``Logger(...)`` and the
    daemon's ``set folder=``/``root=`` check before anything changes.

    Parameters
    ----------
    folder
        An absolute folder (a relative one would depend on a daemon's cwd).
    who
        Start of the error message (``"logger vcam1"``).

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        Relative, cannot be created, not a folder, or not writable.
    """
    path = Path(folder)
    if not path.is_absolute():
        msg = f"{who}: the folder {folder} must be an absolute path"
        raise ConfigError(msg)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{who}: cannot create the folder {folder}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        msg = f"{who}: the folder {folder} is not writable by this user"
        raise ConfigError(msg)
    return path


def check_stream_name(name: str) -> str:
    """Return ``name`` if it is a usable stream name, else raise.

    Parameters
    ----------
    name
        Stream name (becomes part of file and folder names).

    Returns
    -------
    str

    Raises
    ------
    ConfigError
        Against the stream name rule (:func:`vampires.stream.check_stream_name`).
    """
    return _check_stream_name(name, error=ConfigError)


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def cube_filename(stream: str, t_first: float) -> str:
    """Return ``<stream>_HH:MM:SS.nnnnnnnnn.fits`` for a cube whose first frame is at ``t_first``.

    Parameters
    ----------
    stream
        Stream name.
    t_first
        Unix time (s, UTC) of the cube's first frame.

    Returns
    -------
    str
    """
    ns_total = round(t_first * 1e9)
    seconds, ns = divmod(ns_total, 1_000_000_000)
    return f"{stream}_{_utc(seconds).strftime('%H:%M:%S')}.{ns:09d}.fits"


def parse_cube_filename(name: str) -> tuple[str, int, int, int, int] | None:
    """Split a cube file name into (stream, hours, minutes, seconds, nanoseconds), or None."""
    match = _NAME.match(name)
    if match is None:
        return None
    return (
        match["stream"],
        int(match["h"]),
        int(match["m"]),
        int(match["s"]),
        int(match["ns"]),
    )


def cube_folder(stream: str, t_first: float, *, root: Path | None, dirname: Path | None) -> Path:
    """Return the folder of a cube.

    Parameters
    ----------
    stream
        Stream name.
    t_first
        Unix time of the cube's first frame (its UT date names the folder).
    root
        ``<root>/<YYYYMMDD>/<stream>/`` mode.
    dirname
        Exact folder mode (wins over ``root``).

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        Neither ``root`` nor ``dirname`` given.
    """
    if dirname is not None:
        return Path(dirname)
    if root is None:
        msg = "a cube folder needs a root or an exact dirname"
        raise ConfigError(msg)
    return Path(root) / _utc(t_first).strftime("%Y%m%d") / stream


def tmp_path(final: Path) -> Path:
    """Return the name a cube has while it is written (``<name>.fits.tmp``)."""
    return final.with_name(final.name + ".tmp")


def sidecar_path(final: Path) -> Path:
    """Return the sidecar of a cube (same stem, ``.txt``)."""
    return final.with_suffix(".txt")
