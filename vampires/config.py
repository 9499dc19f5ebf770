"""Where things live: the shm folder, the data roots and the control sockets.

The shm folder is resolved exactly as the C ImageStreamIO library resolves it,
so C and Python programs always meet in the same folder: ``$MILK_SHM_DIR`` if
set, else ``/milk/shm`` if that folder exists, else ``/tmp``.

Every other setting follows one precedence rule, read when asked (never at
import): explicit argument > environment variable > TOML file > default. The
TOML file is ``$VAMPIRES_CONFIG`` or ``~/.config/vampires/config.toml``::

    shm_dir = "/milk/shm"            # only used when MILK_SHM_DIR is not set
    data_root = "/mnt/fuuu"          # VAMPIRES_DATA_ROOT
    archive_root = "/mnt/fuuu/ARCHIVED_DATA"   # VAMPIRES_ARCHIVE_ROOT
    stream_mode = "0666"             # VAMPIRES_STREAM_MODE: new stream files (octal)
    [backends]                       # which driver runs each camera (``vampires camstart``)
    vcam1 = "dcam:S/N: 000123"
    vpupcam = "genicam:0"

Tables such as ``[backends]`` and ``[cameras.<name>]`` are kept in
:attr:`Config.sites`; :mod:`vampires.camera.backends.factory` reads the
first, :mod:`vampires.camera.modes` the second.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from vampires._checks import ShmDir
from vampires.errors import ConfigError

__all__ = [
    "DEFAULT_MILK_SHM_DIR",
    "DEFAULT_STREAM_MODE",
    "Config",
    "control_dir",
    "is_tmpfs",
    "shm_dir",
    "stream_mode",
]

logger = logging.getLogger(__name__)

#: The C library's compile-time default shm folder, used when it exists.
DEFAULT_MILK_SHM_DIR = "/milk/shm"
_FALLBACK_SHM_DIR = "/tmp"  # noqa: S108 - this is the C library's own fallback
_DEFAULT_DATA_ROOT = "/mnt/fuuu"
_DEFAULT_ARCHIVE_ROOT = "/mnt/fuuu/ARCHIVED_DATA"
_TMPFS_TYPES = frozenset({"tmpfs", "ramfs", "hugetlbfs"})


def shm_dir() -> Path:
    """Return the shared-memory folder the C library would use right now.

    Returns
    -------
    Path
        ``$MILK_SHM_DIR`` if set and non-empty, else ``/milk/shm`` if it is a
        folder, else ``/tmp``.
    """
    env = os.environ.get("MILK_SHM_DIR", "")
    if env:
        return Path(env)
    if Path(DEFAULT_MILK_SHM_DIR).is_dir():
        return Path(DEFAULT_MILK_SHM_DIR)
    return Path(_FALLBACK_SHM_DIR)


#: Permissions of new stream files: the C library's (umask 0), so any local user may attach.
DEFAULT_STREAM_MODE = 0o666


def stream_mode(mode: int | str | None = None) -> int:
    """Return the permissions new stream files get.

    0666 (the C library's) lets every local user attach, and so also truncate
    or overwrite a stream; on a shared machine ``0660`` (a group) or ``0644``
    (others read-only: they cannot claim a semaphore) is safer.

    Parameters
    ----------
    mode
        Explicit mode (int, or an octal string such as ``"0660"``); else
        ``$VAMPIRES_STREAM_MODE``, else ``stream_mode`` of the TOML file, else 0666.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        Not an octal mode in 0..0777, or the owner could not read and write it.
    """
    source = "argument"
    if mode is None:
        env = os.environ.get("VAMPIRES_STREAM_MODE", "")
        if env:
            mode, source = env, "VAMPIRES_STREAM_MODE"
        else:
            mode = _read_toml(_config_path()).get("stream_mode", DEFAULT_STREAM_MODE)
            source = "config key 'stream_mode'"
    value: int | None = None
    if isinstance(mode, int) and not isinstance(mode, bool):
        value = mode
    elif isinstance(mode, str):
        try:
            value = int(mode, 8)
        except ValueError:
            value = None
    if value is None or not 0 <= value <= 0o777 or value & 0o600 != 0o600:
        msg = (
            f"{source}: stream mode must be octal permissions in 0..0777 with owner "
            f"read and write, such as 0666 or 0660 (got {mode!r})"
        )
        raise ConfigError(msg)
    return value


def control_dir(base: Path | None = None) -> Path:
    """Return the folder holding the daemons' ipc control sockets.

    Parameters
    ----------
    base
        The shm folder; defaults to :func:`shm_dir`.

    Returns
    -------
    Path
        ``<shm dir>/vampires``; not created here.
    """
    return (base if base is not None else shm_dir()) / "vampires"


def is_tmpfs(path: Path) -> bool | None:
    """Tell whether ``path`` lives on a memory file system (tmpfs).

    Parameters
    ----------
    path
        Any existing path.

    Returns
    -------
    bool or None
        True for tmpfs/ramfs, False for a disk, None if it cannot be told
        (no ``/proc/mounts``).
    """
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= len(best):
            best, best_type = mnt, parts[2]
    return best_type in _TMPFS_TYPES if best else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"cannot read config file {path}: {exc}"
        raise ConfigError(msg) from exc


def _config_path() -> Path:
    env = os.environ.get("VAMPIRES_CONFIG", "")
    if env:
        return Path(env)
    return Path.home() / ".config" / "vampires" / "config.toml"


@attrs.frozen(kw_only=True)
class Config:
    """Resolved settings: where streams, sockets and data live.

    Build it with :meth:`Config.load`; it is an immutable value, so pass it
    around instead of reading globals.

    Attributes
    ----------
    shm_dir
        Folder of the ``<name>.im.shm`` stream files.
    data_root
        Default root for logged data (``<root>/<YYYYMMDD>/<stream>/``).
    archive_root
        Root used when logging "to Gen2" (``vampires_preplog`` archive answer).
    sites
        Extra tables from the TOML file (e.g. ``[crops.vcam1.MYCROP]``), untouched.
    """

    shm_dir: Path = attrs.field(converter=Path)
    data_root: Path = attrs.field(converter=Path)
    archive_root: Path = attrs.field(converter=Path)
    sites: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def control_dir(self) -> Path:
        """Folder of the daemons' ipc control sockets (``<shm_dir>/vampires``)."""
        return control_dir(self.shm_dir)

    @classmethod
    def load(
        cls,
        *,
        shm_dir: ShmDir = None,
        data_root: str | os.PathLike[str] | None = None,
        archive_root: str | os.PathLike[str] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Resolve the settings: argument > environment > TOML file > default.

        Parameters
        ----------
        shm_dir, data_root, archive_root
            Explicit values; win over everything else.
        path
            TOML file to read instead of ``$VAMPIRES_CONFIG`` /
            ``~/.config/vampires/config.toml``.

        Returns
        -------
        Config

        Raises
        ------
        ConfigError
            The TOML file exists but cannot be parsed, or a value has the wrong type.
        """
        table = _read_toml(Path(path) if path is not None else _config_path())

        def pick(arg: object, env: str, key: str, default: str) -> Path:
            if arg is not None:
                return Path(os.fspath(arg))  # type: ignore[call-overload]
            if os.environ.get(env):
                return Path(os.environ[env])
            value = table.get(key, default)
            if not isinstance(value, str):
                msg = f"config key {key!r} must be a string path (got {value!r})"
                raise ConfigError(msg)
            return Path(value)

        if shm_dir is not None:
            shm = Path(os.fspath(shm_dir))
        elif os.environ.get("MILK_SHM_DIR"):
            shm = Path(os.environ["MILK_SHM_DIR"])
        else:
            shm = pick(None, "MILK_SHM_DIR", "shm_dir", str(globals()["shm_dir"]()))
        cfg = cls(
            shm_dir=shm,
            data_root=pick(data_root, "VAMPIRES_DATA_ROOT", "data_root", _DEFAULT_DATA_ROOT),
            archive_root=pick(
                archive_root, "VAMPIRES_ARCHIVE_ROOT", "archive_root", _DEFAULT_ARCHIVE_ROOT
            ),
            sites={k: v for k, v in table.items() if isinstance(v, dict)},
        )
        if cfg.shm_dir.is_dir() and is_tmpfs(cfg.shm_dir) is False:
            logger.warning(
                "shm folder %s is not on a tmpfs: streams will be backed by disk "
                "(set MILK_SHM_DIR to a tmpfs such as /dev/shm)",
                cfg.shm_dir,
            )
        return cfg
