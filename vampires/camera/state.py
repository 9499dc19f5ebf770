"""What a camera keeps across restarts: the state file and how start-up settings resolve.

The state file is ``$MILK_SHM_DIR/vampires/camera-<name>.json``. It holds the
last crop, readout mode, exposure, frame rate, trigger mode, ``DATA-TYP``, the
user keywords, the crop generation and the bench state. :func:`resolve_state`
is pure (no I/O): it merges what the caller asks for, what was saved and the
camera table's defaults into one :class:`CameraState`, validating every value
(a refused one raises :class:`~vampires.errors.ConfigError`).
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

import attrs

from vampires._checks import check_bool
from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.keywords import MANAGED_KEYWORDS, BenchState, KeywordValue, check_keywords
from vampires.camera.modes import (
    CropMode,
    ReadoutMode,
    frame_rate,
    parse_data_type,
    parse_readout_mode,
)
from vampires.camera.table import CameraTable
from vampires.errors import ConfigError, KeywordError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["STATE_VERSION", "CameraState", "load_state", "resolve_state", "save_state"]

logger = logging.getLogger(__name__)

#: Version written in (and required of) the state file.
STATE_VERSION = 1


@attrs.frozen(kw_only=True)
class CameraState:
    """What survives restarts (the JSON state file)."""

    crop: CropMode
    readout: ReadoutMode
    tint: float
    fps: float
    external_trigger: bool
    data_type: str = "TEST"
    user: dict[str, KeywordValue] = attrs.field(factory=dict)
    crop_generation: int = 0
    bench: BenchState = attrs.field(factory=BenchState)

    @property
    def settings(self) -> AcquisitionSettings:
        """The acquisition settings a backend is configured with."""
        return AcquisitionSettings(
            crop=self.crop,
            readout=self.readout,
            tint=self.tint,
            fps=self.fps,
            external_trigger=self.external_trigger,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-able dict written to the state file."""
        return {
            "version": STATE_VERSION,
            "crop": self.crop.to_dict(),
            "readout": self.readout.value,
            "tint": self.tint,
            "fps": self.fps,
            "external_trigger": self.external_trigger,
            "data_type": self.data_type,
            "user": dict(self.user),
            "crop_generation": self.crop_generation,
            "bench": attrs.asdict(self.bench),
        }


def load_state(path: Path, name: str) -> dict[str, Any]:
    """Read the state file of camera ``name``; ``{}`` if missing, unreadable or of another version.

    Parameters
    ----------
    path
        The state file.
    name
        Camera name (for the log messages).

    Returns
    -------
    dict
        The saved state as written by :meth:`CameraState.to_json`, or ``{}``.
    """
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("camera %s: ignoring unreadable state file %s: %s", name, path, exc)
        return {}
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        logger.warning("camera %s: ignoring state file %s of another version", name, path)
        return {}
    return raw


def save_state(path: Path, state: CameraState, name: str) -> None:
    """Write ``state`` to ``path`` atomically; a failure is logged, not raised.

    Parameters
    ----------
    path
        The state file.
    state
        What to save.
    name
        Camera name (for the log message).
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=1))
        tmp.replace(path)
    except OSError as exc:
        logger.warning("camera %s: could not save state to %s: %s", name, path, exc)


def resolve_state(
    table: CameraTable,
    name: str,
    restored: dict[str, Any] | None,
    saved: dict[str, Any],
    *,
    crop: str | CropMode | None = None,
    readout: str | ReadoutMode | None = None,
    tint: float | None = None,
    fps: float | None = None,
    external_trigger: bool | None = None,
    data_type: str | None = None,
) -> CameraState:
    """Resolve the start-up state: argument > saved state > camera table default.

    Parameters
    ----------
    table
        The camera table (crops, readout modes, limits).
    name
        Camera name (for messages).
    restored
        Saved state to restore settings from, or None to start from the table.
    saved
        Saved state; its data type, user keywords, crop generation and bench
        are kept even when ``restored`` is None.
    crop, readout, tint, fps, external_trigger, data_type
        Settings asked for; None takes the saved one, else the table's.

    Returns
    -------
    CameraState
        The validated state.

    Raises
    ------
    ConfigError
        A setting asked for is refused by the table.
    """
    old = restored or {}

    def restored_crop() -> CropMode | None:
        if "crop" not in old:
            return None
        try:
            return table.crop(CropMode.from_dict(old["crop"]))
        except ConfigError as exc:
            logger.warning("camera %s: saved crop not usable (%s); using the default", name, exc)
            return None

    crop_mode = table.crop(crop) if crop is not None else restored_crop()
    crop_mode = crop_mode if crop_mode is not None else table.crop(table.default_crop)
    mode = parse_readout_mode(
        readout if readout is not None else old.get("readout", table.default_readout)
    )
    table.readout(mode)
    ext = external_trigger if external_trigger is not None else old.get("external_trigger", False)
    ext = check_bool(ext, f"camera {name}: external_trigger")
    if tint is not None:
        t = table.check_tint(tint)
    elif crop is None and "tint" in old:
        t = table.check_tint(old["tint"])
    else:
        t = table.check_tint(crop_mode.tint or 1e-3)
    ro = table.readout_time(crop_mode, mode)
    if table.exposure_sets_rate:
        if fps is not None:
            t = 1.0 / table.check_fps(fps, crop_mode, mode)
        rate = frame_rate(t, ro, external=ext)
    else:
        wanted = fps if fps is not None else old.get("fps") if crop is None else None
        wanted = wanted if wanted is not None else crop_mode.fps or table.max_fps(crop_mode, mode)
        rate = table.check_fps(wanted, crop_mode, mode)
        if t > 1.0 / rate:
            if tint is not None:
                msg = (
                    f"camera {name}: exposure {t:g} s is longer than the frame "
                    f"period 1/{rate:g} Hz; lower the frame rate"
                )
                raise ConfigError(msg)
            t = 1.0 / rate
    dt = parse_data_type(data_type if data_type is not None else saved.get("data_type", "TEST"))
    user = saved.get("user", {})
    user = dict(user) if isinstance(user, dict) else {}
    try:
        check_keywords(user)
    except KeywordError as exc:
        logger.warning("camera %s: dropping invalid saved user keywords (%s)", name, exc)
        user = {}
    bench_raw = saved.get("bench", {})
    try:
        bench = BenchState(**bench_raw) if isinstance(bench_raw, dict) else BenchState()
    except TypeError:
        bench = BenchState()
    gen = saved.get("crop_generation", 0)
    return CameraState(
        crop=crop_mode,
        readout=mode,
        tint=t,
        fps=rate,
        external_trigger=ext,
        data_type=dt,
        user={k: v for k, v in user.items() if k not in MANAGED_KEYWORDS},
        crop_generation=gen if isinstance(gen, int) else 0,
        bench=bench,
    )
