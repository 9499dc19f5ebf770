"""The camera keyword set: pure functions from settings to stream keywords.

Everything here is a pure function of its arguments (no camera, no stream),
so the header a logged cube will carry can be built and checked in a test.
Values are Python ``int``, ``float`` (kept as doubles: no ``%20.8f``
rounding, which left the WCS matrices with 2-3 significant digits), ``str``
(at most 15 characters, the ImageStreamIO limit) or ``bool`` (stored by the
stream as ``#TRUE#`` / ``#FALSE#``). Every value comes with a comment of at
most 79 characters; :func:`check_keywords` enforces the stream's own limits
(:mod:`vampires.stream.layout`, checked by ``StreamKeywords.check``).

Keywords starting with ``_`` are technical: the logger never writes them to
FITS (``_MAQTIME`` acquisition time in us since the epoch, ``_FGSIZE1/2`` frame
size, ``_CROPGEN`` crop generation, ``_CROP`` crop name).

WCS (reference section 3.3): rotation = ``INST-PA`` + ``D_IMRPAD``; pixel
scale per camera (cam1 negative on both axes, cam2 negative in x only). In a
crop with MBI hotspots the four sets (primary, B, C, D) are the fields F760,
F720, F670, F610 in that order, reference pixel = hotspot - crop origin + 0.5;
a field whose hotspot lies outside the crop (F610 in MBI_REDUCED) is named
``NA``. Otherwise the primary set sits at the frame centre ((n + 1) / 2 in
FITS pixels) and B-D are named ``NA``. ``CRVAL*`` come from the telescope
through the aux header, not from the camera.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from vampires.camera.modes import CropMode, ReadoutMode
from vampires.camera.table import CameraTable
from vampires.errors import KeywordError

__all__ = [
    "MANAGED_KEYWORDS",
    "MBI_FIELDS",
    "WCS_SUFFIXES",
    "BenchState",
    "KeywordValue",
    "camera_keywords",
    "check_keywords",
    "frame_keywords",
    "obs_mod",
    "wcs_keywords",
]

#: A keyword value as the stream stores it.
KeywordValue = int | float | str | bool

#: MBI fields in WCS order (primary, B, C, D).
MBI_FIELDS = ("F760", "F720", "F670", "F610")
#: Suffixes of the four WCS sets.
WCS_SUFFIXES = ("", "B", "C", "D")

_NON_SDI_FILTERS = frozenset({"UNKNOWN", "OPEN", "BLOCK", ""})
_MAS_PER_DEG = 3.6e6

_WCS_BASE = (
    "WCSNAME",
    "CTYPE1",
    "CTYPE2",
    "CUNIT1",
    "CUNIT2",
    "CRPIX1",
    "CRPIX2",
    "CDELT1",
    "CDELT2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
)

#: Keywords the camera maintains itself: ``set_keyword`` refuses them (use the
#: dedicated setter, e.g. ``set_tint`` for EXPTIME, ``set_data_type`` for DATA-TYP).
MANAGED_KEYWORDS = frozenset(
    {
        "U_CAMERA", "DETECTOR", "U_DETMOD", "EXPTIME", "FRATE", "MFRATE", "EXTTRIG",
        "GAIN", "DETGAIN", "DET-TMP", "DATA-TYP", "OBS-MOD", "FILTER02", "PRD-MIN1", "PRD-MIN2",
        "PRD-RNG1", "PRD-RNG2", "BIN-FCT1", "BIN-FCT2", "CROPPED", "DETPXSZ1",
        "DETPXSZ2", "INST-PA", "F-RATIO", "BUNIT", "_MAQTIME", "_FGSIZE1", "_FGSIZE2",
        "_CROPGEN", "_CROP",
    }
    | {f"{k}{s}" for k in _WCS_BASE for s in WCS_SUFFIXES}
)  # fmt: skip


@attrs.frozen(kw_only=True)
class BenchState:
    """The optical bench as far as the camera keywords care (simulated here).

    On the instrument these come from redis every ~10 s; in the simulator they
    are set with ``Camera.set_bench``.

    Attributes
    ----------
    beamsplitter
        VAMPIRES beamsplitter (``U_BS``): ``PBS``, ``NPBS``, ``OPEN`` ...
    hwp_stage
        WPU half-wave-plate stage position (``P_STGPS2``).
    polarizer_stage
        WPU polariser stage position (``P_STGPS1``).
    scexao_polarizer
        SCExAO polariser (``X_POLAR``): ``IN`` or ``OUT``.
    diff_filter1, diff_filter2
        Differential filters in front of cam1 / cam2 (``U_DIFFL1/2``).
    pupil_lens
        Pupil lens in the beam.
    imr_pad
        Image-rotator position angle of the dec axis (``D_IMRPAD``) [deg].
    """

    beamsplitter: str = "OPEN"
    hwp_stage: float = 0.0
    polarizer_stage: float = 0.0
    scexao_polarizer: str = "OUT"
    diff_filter1: str = "OPEN"
    diff_filter2: str = "OPEN"
    pupil_lens: bool = False
    imr_pad: float = 0.0


def obs_mod(crop_name: str, bench: BenchState) -> str:
    """Observing mode ``OBS-MOD`` (reference section 3.3).

    Parameters
    ----------
    crop_name
        Current crop name.
    bench
        Bench state.

    Returns
    -------
    str
        ``IMAG`` or ``IPOL``, with ``_SDI``, ``_MBI``, ``_MBIR`` or ``_PUP``
        (first that applies, in that order) or no suffix.
    """
    polarimetry = bench.beamsplitter.strip().upper() == "PBS" and (
        abs(bench.hwp_stage - 56.0) < 1.0
        or abs(bench.polarizer_stage - 55.2) < 1.0
        or abs(bench.polarizer_stage - 90.0) < 1.0
        or bench.scexao_polarizer.strip().upper() == "IN"
    )
    base = "IPOL" if polarimetry else "IMAG"
    sdi = (
        bench.diff_filter1.strip().upper() not in _NON_SDI_FILTERS
        and bench.diff_filter2.strip().upper() not in _NON_SDI_FILTERS
    )
    if sdi:
        return f"{base}_SDI"
    if crop_name == "MBI":
        return f"{base}_MBI"
    if crop_name == "MBI_REDUCED":
        return f"{base}_MBIR"
    if bench.pupil_lens:
        return f"{base}_PUP"
    return base


def _wcs_set(
    suffix: str,
    name: str,
    crpix: tuple[float, float],
    cdelt: tuple[float, float],
    rotation_deg: float,
) -> dict[str, tuple[KeywordValue, str]]:
    theta = math.radians(rotation_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    cd = (
        cdelt[0] * cos_t,
        -cdelt[1] * sin_t,
        cdelt[0] * sin_t,
        cdelt[1] * cos_t,
    )
    s = suffix
    label = f"WCS {s or 'primary'}"
    return {
        f"WCSNAME{s}": (name, f"{label}: field name (NA = unused)"),
        f"CTYPE1{s}": ("RA---TAN", f"{label}: pixel coordinate system"),
        f"CTYPE2{s}": ("DEC--TAN", f"{label}: pixel coordinate system"),
        f"CUNIT1{s}": ("deg", f"{label}: units of CRVAL1 and CDELT1"),
        f"CUNIT2{s}": ("deg", f"{label}: units of CRVAL2 and CDELT2"),
        f"CRPIX1{s}": (float(crpix[0]), f"{label}: reference pixel in X [pixel]"),
        f"CRPIX2{s}": (float(crpix[1]), f"{label}: reference pixel in Y [pixel]"),
        f"CDELT1{s}": (float(cdelt[0]), f"{label}: X scale projected on detector [deg/pix]"),
        f"CDELT2{s}": (float(cdelt[1]), f"{label}: Y scale projected on detector [deg/pix]"),
        f"CD1_1{s}": (cd[0], f"{label}: pixel coordinate translation matrix"),
        f"CD1_2{s}": (cd[1], f"{label}: pixel coordinate translation matrix"),
        f"CD2_1{s}": (cd[2], f"{label}: pixel coordinate translation matrix"),
        f"CD2_2{s}": (cd[3], f"{label}: pixel coordinate translation matrix"),
    }


def wcs_keywords(
    table: CameraTable, crop: CropMode, bench: BenchState
) -> dict[str, tuple[KeywordValue, str]]:
    """Build the four WCS sets (primary, B, C, D) for a crop.

    Parameters
    ----------
    table
        Camera table (plate scale, signs, INST-PA).
    crop
        The crop really read (snapped).
    bench
        Bench state (``imr_pad``).

    Returns
    -------
    dict
        ``{name: (value, comment)}``; empty for a camera without a plate scale
        (vpupcam).
    """
    if table.plate_scale_mas is None:
        return {}
    scale = table.plate_scale_mas / _MAS_PER_DEG
    cdelt = (table.plate_scale_sign[0] * scale, table.plate_scale_sign[1] * scale)
    rotation = (table.inst_pa or 0.0) + bench.imr_pad
    centre = ((crop.width + 1) / 2.0, (crop.height + 1) / 2.0)
    out: dict[str, tuple[KeywordValue, str]] = {}
    spots = {h.field: h for h in crop.hotspots}
    if spots:
        for suffix, field in zip(WCS_SUFFIXES, MBI_FIELDS, strict=True):
            spot = spots.get(field)
            if spot is None:
                out.update(_wcs_set(suffix, "NA", centre, cdelt, rotation))
                continue
            crpix = (spot.x - crop.x0 + 0.5, spot.y - crop.y0 + 0.5)
            name = field if crop.contains(spot.x, spot.y) else "NA"
            out.update(_wcs_set(suffix, name, crpix, cdelt, rotation))
    else:
        for suffix in WCS_SUFFIXES:
            out.update(_wcs_set(suffix, "PRIMARY" if not suffix else "NA", centre, cdelt, rotation))
    return out


def camera_keywords(
    table: CameraTable,
    *,
    crop: CropMode,
    readout: ReadoutMode,
    tint: float,
    fps: float,
    external_trigger: bool,
    data_type: str,
    temperature: float,
    measured_fps: float = 0.0,
    bench: BenchState | None = None,
    crop_generation: int = 0,
    user: Mapping[str, KeywordValue] | None = None,
) -> dict[str, tuple[KeywordValue, str]]:
    """Build the full camera keyword set.

    Parameters
    ----------
    table
        Camera table.
    crop
        The crop really read (snapped, as :meth:`CameraTable.crop` returns).
    readout
        Readout mode.
    tint, fps
        Exposure [s] and frame rate [Hz] (``FRATE``).
    external_trigger
        External trigger on.
    data_type
        Subaru data type (``DATA-TYP``).
    temperature
        Sensor temperature [K].
    measured_fps
        Measured frame rate [Hz] (``MFRATE``).
    bench
        Bench state for ``OBS-MOD`` and the WCS rotation.
    crop_generation
        ``_CROPGEN``: incremented at every crop change.
    user
        User keywords (``set_keyword``), written last; they may not replace
        :data:`MANAGED_KEYWORDS`.

    Returns
    -------
    dict
        ``{name: (value, comment)}`` in header order.

    Raises
    ------
    KeywordError
        A value or name breaks the stream limits (see :func:`check_keywords`).
    """
    bench = bench if bench is not None else BenchState()
    spec = table.readout(readout)
    full = crop.width == table.sensor_width and crop.height == table.sensor_height
    kw: dict[str, tuple[KeywordValue, str]] = {}
    if table.number is not None:
        kw["U_CAMERA"] = (table.number, "VAMPIRES camera number (1 or 2)")
    kw["DETECTOR"] = (table.detector, "Name of the detector")
    kw["U_DETMOD"] = (readout.value, "VAMPIRES detector readout mode (FAST/SLOW)")
    kw["EXPTIME"] = (float(tint), "[s] Total integration time of the frame")
    kw["FRATE"] = (float(fps), "[Hz] Frame rate of the acquisition")
    kw["MFRATE"] = (float(measured_fps), "[Hz] Measured frame rate")
    kw["EXTTRIG"] = (bool(external_trigger), "Exposure of detector set by external trigger")
    if table.gain_keyword == "GAIN":
        kw["GAIN"] = (spec.gain, "[e-/adu] Conversion factor of the detector")
    else:
        kw[table.gain_keyword] = (spec.gain, "Detector gain setting")
    kw["DET-TMP"] = (float(temperature), "[K] Detector temperature")
    kw["DATA-TYP"] = (data_type, "Subaru-style exposure type")
    if table.number is not None:
        kw["OBS-MOD"] = (obs_mod(crop.name, bench), "Observation mode")
        diff = bench.diff_filter1 if table.number == 1 else bench.diff_filter2
        kw["FILTER02"] = (diff, "Differential filter in front of this camera")
    kw["PRD-MIN1"] = (crop.x0, "[pixel] Origin in X of the cropped window")
    kw["PRD-MIN2"] = (crop.y0, "[pixel] Origin in Y of the cropped window")
    kw["PRD-RNG1"] = (crop.width, "[pixel] Range in X of the cropped window")
    kw["PRD-RNG2"] = (crop.height, "[pixel] Range in Y of the cropped window")
    kw["BIN-FCT1"] = (1, "[pixel] Binning factor of X axis")
    kw["BIN-FCT2"] = (1, "[pixel] Binning factor of Y axis")
    kw["CROPPED"] = (not full, "Partial readout or cropped")
    kw["DETPXSZ1"] = (table.pixel_pitch_mm, "[mm] Detector pixel size in axis1")
    kw["DETPXSZ2"] = (table.pixel_pitch_mm, "[mm] Detector pixel size in axis2")
    if table.f_ratio is not None:
        kw["F-RATIO"] = (table.f_ratio, "F-ratio of the beam at the detector")
    if table.inst_pa is not None:
        kw["INST-PA"] = (table.inst_pa, "[deg] Instrument angle offset")
    kw["BUNIT"] = ("adu", "Unit of original pixel values")
    kw.update(wcs_keywords(table, crop, bench))
    kw["_FGSIZE1"] = (crop.width, "[pixel] Frame size in X")
    kw["_FGSIZE2"] = (crop.height, "[pixel] Frame size in Y")
    kw["_CROP"] = (crop.name, "Crop mode name")
    kw["_CROPGEN"] = (int(crop_generation), "Crop generation: +1 at every crop change")
    for name, value in (user or {}).items():
        if name in MANAGED_KEYWORDS:
            msg = f"keyword {name!r} is managed by the camera and cannot be set by the user"
            raise KeywordError(msg)
        kw[name] = (value, "User keyword")
    check_keywords(kw)
    return kw


def frame_keywords(acquisition_time: float, measured_fps: float) -> dict[str, KeywordValue]:
    """Keywords that change with every frame.

    Parameters
    ----------
    acquisition_time
        Frame acquisition time [unix s].
    measured_fps
        Measured frame rate [Hz].

    Returns
    -------
    dict
        ``_MAQTIME`` (int, us since the epoch) and ``MFRATE``.
    """
    return {"_MAQTIME": round(acquisition_time * 1e6), "MFRATE": float(measured_fps)}


def check_keywords(keywords: Mapping[str, object]) -> None:
    """Check names, values and comments against the stream limits.

    The limits are the stream's (:meth:`vampires.stream.StreamKeywords.check`,
    from :mod:`vampires.stream.layout`), so a keyword that passes here is one
    the stream accepts; floats must also be finite.

    Parameters
    ----------
    keywords
        ``{name: value}`` or ``{name: (value, comment)}``.

    Raises
    ------
    KeywordError
        A name of more than 15 characters, not printable ASCII or with spaces,
        a string value of more than 15 characters, a comment of more than 79,
        a non-finite float or a value of another type.
    """
    from vampires.stream import StreamKeywords

    StreamKeywords.check(keywords)
    for name, item in keywords.items():
        value = item[0] if isinstance(item, tuple) else item
        if isinstance(value, float) and not math.isfinite(value):
            msg = f"keyword {name}: value must be finite (got {value!r})"
            raise KeywordError(msg)
