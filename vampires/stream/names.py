"""Stream names and files: the one name rule, ``<shm dir>/<name>.im.shm``, the listing.

A stream name is used as a file name in the shm folder (by milk and by us), in
FITS cube file names of the logger, as a ZMQ topic and inside daemon names. One
rule, :func:`check_stream_name`, serves them all:

- 1 to 79 characters (``char name[80]`` of ``IMAGE_METADATA``, with its NUL);
- ASCII letters, digits, ``_``, ``.``, ``+`` and ``-`` only: no ``/`` or NUL
  (a name is not a path), no spaces, nothing a shell or a FITS file name would
  need to quote;
- not starting with ``.`` (a hidden file, which :func:`list_streams` skips, as
  do the temporary files of :meth:`Stream.create`) or ``-`` (read as an
  option by command-line tools);
- no ``..``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from vampires.config import shm_dir as _default_shm_dir
from vampires.errors import StreamError, VampiresError
from vampires.stream.layout import NAME_MAX

if TYPE_CHECKING:
    from vampires._checks import ShmDir

__all__ = ["NAME_RULE", "check_stream_name", "list_streams", "stream_path"]

_SUFFIX: Final = ".im.shm"
_ALLOWED: Final = re.compile(r"[A-Za-z0-9_.+-]+")
#: The rule in words, for messages and docs.
NAME_RULE: Final = (
    f"1-{NAME_MAX} ASCII letters, digits, '_', '.', '+' or '-', "
    "not starting with '.' or '-', without '..'"
)


def _problem(name: str) -> str:
    """Say what is wrong with a non-empty name, or return ""."""
    if "/" in name or "\0" in name:
        return "contains '/' or NUL (a stream is a file in the shm folder, not a path)"
    if ".." in name:
        return "contains '..'"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long, the limit is {NAME_MAX}"
    if _ALLOWED.fullmatch(name) is None:
        return "has characters other than ASCII letters, digits, '_', '.', '+' and '-'"
    if name[0] in ".-":
        return f"starts with {name[0]!r}"
    return ""


def check_stream_name(
    name: object, *, what: str = "stream name", error: type[VampiresError] = StreamError
) -> str:
    """Return ``name`` if it is a valid stream name (the one rule, see the module doc).

    Parameters
    ----------
    name
        Candidate name.
    what
        How the message calls it (``"daemon name"``, ``"hello name"``...).
    error
        Exception type to raise: the caller's package's (``StreamError`` here,
        ``ConfigError`` for constructor arguments, ``ProtocolError`` on the wire).

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    VampiresError
        ``error``: not a string, empty, or against the rule.
    """
    if not isinstance(name, str):
        msg = f"{what} must be a str (got {type(name).__name__} {name!r})"
        raise error(msg)
    if not name:
        msg = f"{what} must be a non-empty string (got '')"
        raise error(msg)
    problem = _problem(name)
    if problem:
        msg = f"invalid {what} {name!r}: it {problem} (a name is invalid unless it has {NAME_RULE})"
        raise error(msg)
    return name


def _resolve_dir(shm_dir: ShmDir) -> Path:
    return Path(shm_dir) if shm_dir is not None else _default_shm_dir()


def stream_path(name: str, *, shm_dir: ShmDir = None) -> Path:
    """Return the file of stream ``name``: ``<shm dir>/<name>.im.shm``.

    Parameters
    ----------
    name
        Stream name (validated by :func:`check_stream_name`).
    shm_dir
        Folder; defaults to the C library's choice (:func:`vampires.config.shm_dir`).

    Returns
    -------
    Path

    Raises
    ------
    StreamError
        Invalid name.
    """
    return _resolve_dir(shm_dir) / f"{check_stream_name(name)}{_SUFFIX}"


def list_streams(*, shm_dir: ShmDir = None) -> list[str]:
    """Return the names of the ``*.im.shm`` files in the shm folder, sorted.

    Parameters
    ----------
    shm_dir
        Folder; defaults to the C library's choice.

    Returns
    -------
    list of str
        Names only; a listed file may still fail to open (not a stream).
    """
    folder = _resolve_dir(shm_dir)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(
        e.name[: -len(_SUFFIX)]
        for e in entries
        if e.name.endswith(_SUFFIX) and not e.name.startswith(".") and len(e.name) > len(_SUFFIX)
    )
