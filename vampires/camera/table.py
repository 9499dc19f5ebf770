"""Camera tables: the TOML schema, loading and site overrides (:func:`load_camera_table`).

The tables are data (``vampires/camera/data/<camera>.toml``), never constants:
MBI crops follow hotspots that are re-fitted several times a year. A site can
add or override anything without editing the package, either with a TOML file
of the same schema (``load_camera_table("vcam1", site="my-site.toml")``) or in
the vampires config file (:attr:`vampires.config.Config.sites`)::

    [cameras.vcam1.crops.MBI_JEWEL]        # a new crop for vcam1
    x0 = 1000
    y0 = 700
    width = 2000
    height = 1000
    hotspots = true
    [cameras.vcam2.hotspots]               # re-fitted hotspots for vcam2
    F610 = [1186.0, 1519.0]
    [crops.vcam1.CUSTOM]                   # shorthand: crops only
    x0 = 0
    ...

A :class:`CameraTable` is what is fixed about one camera (sensor, readout
modes, crops, limits); the values it holds (:class:`~vampires.camera.modes.CropMode`,
:class:`~vampires.camera.modes.ReadoutMode`) and the timing model live in
:mod:`vampires.camera.modes`.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from vampires.camera.modes import (
    CropMode,
    Hotspot,
    ReadoutMode,
    _opt_float,
    frame_rate,
    parse_readout_mode,
    readout_time,
)
from vampires.config import Config
from vampires.errors import ConfigError

__all__ = ["CameraTable", "ReadoutSpec", "SimParams", "known_cameras", "load_camera_table"]

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ReadoutSpec:
    """What one readout mode means on one camera.

    Attributes
    ----------
    mode
        The readout mode.
    line_time
        Line (1H) time [s].
    gain
        Conversion gain written into ``GAIN`` (e-/adu), or the gain setting for
        cameras that use ``DETGAIN``.
    read_noise
        Read noise [e-].
    """

    mode: ReadoutMode
    line_time: float
    gain: float
    read_noise: float


@attrs.frozen(kw_only=True)
class SimParams:
    """What the simulated backend shows for one camera (``[sim]`` table)."""

    bias: float = 200.0
    dark_current: float = 0.0
    temperature: float = 293.15
    psf_fwhm: float = 3.0
    peak_rate: float = 1.0e6
    source: tuple[float, float] | None = None
    pupil_radius: float = 200.0
    pupil_rate: float = 2.0e4
    scene: str = "psf"
    read_noise_adu: float | None = None


@attrs.frozen(kw_only=True)
class CameraTable:
    """Everything fixed about one camera: sensor, readout modes, crops.

    Load it with :func:`load_camera_table`; crops are a read-only mapping of
    frozen :class:`CropMode` values as written in the table (resolve one
    with :meth:`crop`, which snaps and checks it).
    """

    name: str
    model: str
    detector: str
    number: int | None
    sensor_width: int
    sensor_height: int
    pixel_pitch_mm: float
    alignment: int
    rows_per_line: int
    exposure_sets_rate: bool
    min_tint: float
    max_tint: float
    plate_scale_mas: float | None
    plate_scale_sign: tuple[int, int]
    inst_pa: float | None
    f_ratio: float | None
    gain_keyword: str
    default_crop: str
    default_readout: ReadoutMode
    readouts: Mapping[ReadoutMode, ReadoutSpec] = attrs.field(eq=False)
    crops: Mapping[str, CropMode] = attrs.field(eq=False)
    hotspots: tuple[Hotspot, ...]
    sim: SimParams

    @property
    def sensor(self) -> tuple[int, int]:
        """``(width, height)`` of the full sensor."""
        return (self.sensor_width, self.sensor_height)

    def readout(self, mode: object) -> ReadoutSpec:
        """Return the spec of a readout mode this camera has.

        Raises
        ------
        ConfigError
            Unknown mode, or a mode this camera does not have (vpupcam: FAST only).
        """
        parsed = parse_readout_mode(mode)
        spec = self.readouts.get(parsed)
        if spec is None:
            have = ", ".join(m.value for m in self.readouts)
            msg = f"camera {self.name}: readout mode {parsed.value} not available (has {have})"
            raise ConfigError(msg)
        return spec

    def crop(self, crop: str | CropMode) -> CropMode:
        """Resolve a crop name or check a custom crop; return what the camera reads.

        Parameters
        ----------
        crop
            A name of :attr:`crops` (case-insensitive) or a :class:`CropMode`.

        Returns
        -------
        CropMode
            The crop snapped to the camera's alignment (a warning is logged
            when it had to be snapped).

        Raises
        ------
        ConfigError
            Unknown name, or a crop that does not fit the sensor.
        """
        if isinstance(crop, str):
            mode = self.crops.get(crop.strip().upper()) or self.crops.get(crop.strip())
            if mode is None:
                msg = (
                    f"camera {self.name}: unknown crop {crop!r}; "
                    f"known crops: {', '.join(self.crops)}"
                )
                raise ConfigError(msg)
        elif isinstance(crop, CropMode):
            mode = crop
        else:  # JSON commands can send anything
            msg = f"camera {self.name}: crop must be a name or a CropMode (got {crop!r})"  # type: ignore[unreachable]
            raise ConfigError(msg)
        self._check_inside(mode)
        snapped = mode.snapped(self.alignment, self.sensor)
        if snapped is not mode:
            logger.warning(
                "camera %s: crop %s origin/size (%d, %d, %dx%d) not multiples of %d; "
                "the camera reads (%d, %d, %dx%d) and the header says so",
                self.name, mode.name, mode.x0, mode.y0, mode.width, mode.height,
                self.alignment, snapped.x0, snapped.y0, snapped.width, snapped.height,
            )  # fmt: skip
            self._check_inside(snapped)
        return snapped

    def _check_inside(self, mode: CropMode) -> None:
        if mode.x0 + mode.width > self.sensor_width or mode.y0 + mode.height > self.sensor_height:
            msg = (
                f"camera {self.name}: crop {mode.name!r} ({mode.x0}, {mode.y0}, "
                f"{mode.width}x{mode.height}) does not fit the "
                f"{self.sensor_width}x{self.sensor_height} sensor"
            )
            raise ConfigError(msg)

    def readout_time(self, crop: CropMode, mode: object) -> float:
        """Readout time [s] of ``crop`` in readout ``mode`` (row model)."""
        return readout_time(crop.height, self.readout(mode).line_time, self.rows_per_line)

    def max_fps(
        self, crop: CropMode, mode: object, *, tint: float | None = None, external: bool = False
    ) -> float:
        """Highest frame rate [Hz] of ``crop`` in readout ``mode``.

        Parameters
        ----------
        crop, mode
            Crop and readout mode.
        tint
            Exposure [s]; None for the readout limit alone (``1 / readout``,
            what ``set_fps`` accepts at most).
        external
            External trigger (exposure and readout do not overlap).

        Returns
        -------
        float
            ``1 / readout`` without ``tint``, else :func:`frame_rate`.
        """
        readout = self.readout_time(crop, mode)
        if tint is None:
            return 1.0 / readout
        return frame_rate(tint, readout, external=external)

    def check_tint(self, tint: object) -> float:
        """Validate an exposure time; return it as float.

        Raises
        ------
        ConfigError
            Not a number, or outside ``[min_tint, max_tint]``.
        """
        if isinstance(tint, bool) or not isinstance(tint, int | float) or not math.isfinite(tint):
            msg = f"camera {self.name}: exposure time must be a number of seconds (got {tint!r})"
            raise ConfigError(msg)
        if not self.min_tint <= tint <= self.max_tint:
            msg = (
                f"camera {self.name}: exposure time {tint!r} s out of range "
                f"[{self.min_tint:g}, {self.max_tint:g}] s"
            )
            raise ConfigError(msg)
        return float(tint)

    def check_fps(self, fps: object, crop: CropMode, mode: object) -> float:
        """Validate a frame rate for ``crop`` and readout ``mode``; return it.

        Raises
        ------
        ConfigError
            Not a positive number, or above the crop's maximum frame rate.
        """
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps):
            msg = f"camera {self.name}: frame rate must be a number in Hz (got {fps!r})"
            raise ConfigError(msg)
        limit = self.max_fps(crop, mode)
        low = 1.0 / self.max_tint
        if fps > limit * (1 + 1e-9):
            msg = (
                f"camera {self.name}: {fps:g} Hz is above the maximum {limit:.2f} Hz of crop "
                f"{crop.name} in {parse_readout_mode(mode).value} readout"
            )
            raise ConfigError(msg)
        if fps < low:
            msg = f"camera {self.name}: frame rate must be at least {low:g} Hz (got {fps:g})"
            raise ConfigError(msg)
        return float(min(fps, limit))


def known_cameras() -> tuple[str, ...]:
    """Names of the cameras whose tables ship with the package."""
    files = resources.files("vampires.camera").joinpath("data")
    return tuple(sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml")))


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        msg = f"camera table {path} not found"
        raise ConfigError(msg) from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"cannot read camera table {path}: {exc}"
        raise ConfigError(msg) from exc


def load_camera_table(
    name: str,
    *,
    config: Config | None = None,
    site: str | os.PathLike[str] | None = None,
) -> CameraTable:
    """Load a camera's table: package data, then site overrides.

    Parameters
    ----------
    name
        Camera name (``vcam1``, ``vcam2``, ``vpupcam``, or a camera fully
        described by ``site`` / the config).
    config
        Config whose ``sites`` may hold ``[cameras.<name>]`` (same schema as
        the data files) and ``[crops.<name>.<CROP>]`` tables. Defaults to
        :meth:`Config.load`.
    site
        A TOML file with the data-file schema, merged last (wins).

    Returns
    -------
    CameraTable

    Raises
    ------
    ConfigError
        Unknown camera, unreadable file, or an invalid value (which camera,
        which key, what was wrong).
    """
    if not name or "/" in name or ".." in name:
        msg = f"invalid camera name {name!r}"
        raise ConfigError(msg)
    raw: dict[str, Any] = {}
    if name in known_cameras():
        data = resources.files("vampires.camera").joinpath("data", f"{name}.toml")
        raw = tomllib.loads(data.read_text())
    cfg = config if config is not None else Config.load()
    cams = cfg.sites.get("cameras", {})
    if isinstance(cams, Mapping) and isinstance(cams.get(name), Mapping):
        raw = _deep_merge(raw, cams[name])
    crops = cfg.sites.get("crops", {})
    if isinstance(crops, Mapping) and isinstance(crops.get(name), Mapping):
        raw = _deep_merge(raw, {"crops": crops[name]})
    if site is not None:
        raw = _deep_merge(raw, _read(Path(site)))
    if not raw:
        msg = (
            f"unknown camera {name!r}: known cameras are {', '.join(known_cameras())} "
            "(describe others in a site TOML)"
        )
        raise ConfigError(msg)
    return _build_table(name, raw)


def _build_table(name: str, raw: Mapping[str, Any]) -> CameraTable:
    where = f"camera table {name}"

    def get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], ctx: str) -> Any:  # noqa: ANN401
        if key not in table:
            msg = f"{where}: missing [{ctx}] {key}"
            raise ConfigError(msg)
        value = table[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            msg = f"{where}: [{ctx}] {key} has the wrong type (got {value!r})"
            raise ConfigError(msg)
        if not isinstance(value, kind):
            msg = f"{where}: [{ctx}] {key} has the wrong type (got {value!r})"
            raise ConfigError(msg)
        return value

    cam = raw.get("camera", {})
    if not isinstance(cam, Mapping):
        msg = f"{where}: [camera] must be a table"
        raise ConfigError(msg)
    num = (int, float)
    readouts: dict[ReadoutMode, ReadoutSpec] = {}
    for mode_name, spec in dict(raw.get("readout", {})).items():
        mode = parse_readout_mode(mode_name)
        ctx = f"readout.{mode_name}"
        readouts[mode] = ReadoutSpec(
            mode=mode,
            line_time=float(get(spec, "line_time", num, ctx)),
            gain=float(get(spec, "gain", num, ctx)),
            read_noise=float(get(spec, "read_noise", num, ctx)),
        )
    if not readouts:
        msg = f"{where}: needs at least one [readout.FAST|SLOW] table"
        raise ConfigError(msg)
    hotspots = tuple(
        Hotspot(field=f, x=float(xy[0]), y=float(xy[1]))
        for f, xy in dict(raw.get("hotspots", {})).items()
    )
    crops: dict[str, CropMode] = {}
    for crop_name, entry in dict(raw.get("crops", {})).items():
        if not isinstance(entry, Mapping):
            msg = f"{where}: [crops.{crop_name}] must be a table"
            raise ConfigError(msg)
        hs = entry.get("hotspots", False)
        if hs is True:
            crop_hotspots = [[h.field, h.x, h.y] for h in hotspots]
        elif isinstance(hs, Mapping):
            crop_hotspots = [[f, *xy] for f, xy in hs.items()]
        else:
            crop_hotspots = []
        try:
            crops[crop_name] = CropMode.from_dict(
                {**entry, "name": crop_name, "hotspots": crop_hotspots}
            )
        except ConfigError as exc:
            msg = f"{where}: {exc}"
            raise ConfigError(msg) from exc
    sim_raw = dict(raw.get("sim", {}))
    source = sim_raw.pop("source", None)
    try:
        sim = SimParams(
            source=(float(source[0]), float(source[1])) if source is not None else None,
            **{k: v for k, v in sim_raw.items() if k in attrs.fields_dict(SimParams)},
        )
    except (TypeError, ValueError, IndexError) as exc:
        msg = f"{where}: invalid [sim] table ({exc})"
        raise ConfigError(msg) from exc
    sign = cam.get("plate_scale_sign", [1, 1])
    number = cam.get("number")
    table = CameraTable(
        name=str(cam.get("name", name)),
        model=str(cam.get("model", name)),
        detector=str(cam.get("detector", name.upper())),
        number=int(number) if number is not None else None,
        sensor_width=int(get(cam, "sensor_width", int, "camera")),
        sensor_height=int(get(cam, "sensor_height", int, "camera")),
        pixel_pitch_mm=float(get(cam, "pixel_pitch_mm", num, "camera")),
        alignment=int(cam.get("alignment", 1)),
        rows_per_line=int(cam.get("rows_per_line", 1)),
        exposure_sets_rate=bool(cam.get("exposure_sets_rate", True)),
        min_tint=float(cam.get("min_tint", 1e-5)),
        max_tint=float(cam.get("max_tint", 1800.0)),
        plate_scale_mas=_opt_float(cam.get("plate_scale_mas")),
        plate_scale_sign=(int(sign[0]), int(sign[1])),
        inst_pa=_opt_float(cam.get("inst_pa")),
        f_ratio=_opt_float(cam.get("f_ratio")),
        gain_keyword=str(cam.get("gain_keyword", "GAIN")),
        default_crop=str(cam.get("default_crop", next(iter(crops), "FULL"))),
        default_readout=parse_readout_mode(cam.get("default_readout", "FAST")),
        readouts=MappingProxyType(readouts),
        crops=MappingProxyType(crops),
        hotspots=hotspots,
        sim=sim,
    )
    if table.name != name:
        msg = f"{where}: [camera] name is {table.name!r}, expected {name!r}"
        raise ConfigError(msg)
    if table.default_crop not in crops:
        msg = f"{where}: default_crop {table.default_crop!r} is not one of its crops"
        raise ConfigError(msg)
    table.readout(table.default_readout)
    for crop in crops.values():
        table._check_inside(crop)  # off-grid crops are reported when used (crop())
    return table
