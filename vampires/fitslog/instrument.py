"""A plausible simulated instrument state for cubes logged without an aux header.

At the telescope the scxkw daemon writes ``$MILK_SHM_DIR/<stream>.aux.fits``
with the telescope, AO188, WPU and VAMPIRES bench state. In simulation, the
demo and tests there is none, yet every file must still carry the keywords the
pipeline reads (scxkw synchroniser, vampires_dpp): this module builds them from
a frame shape and a time, deterministic and self-consistent (ALTITUDE/ZD/AIRMASS,
RA/DEC and the WCS reference values, ``OBS-MOD`` from the crop).

Camera keywords present in the stream (``EXPTIME``, ``U_CAMERA``, ``PRD-*``, WCS
sets of a simulated camera, ...) replace these values when the header is
assembled, because stream keywords come after the aux cards.
"""

from __future__ import annotations

import math
import re

from vampires.fitslog.header import Card

__all__ = ["TARGET", "simulated_state"]

#: The simulated target: (OBJECT, RA hh:mm:ss.sss, DEC +dd:mm:ss.ss).
TARGET = ("HD 169142", "18:24:29.780", "-29:46:49.37")
_ALTITUDE = 58.0
_PLATE_SCALE_MAS = {1: 5.908, 2: 5.895}
_INST_PA = {1: -38.90, 2: -38.58}
_IMRPAD = 32.5
_FULL = (2304, 4096)


def _sexagesimal_deg(text: str, hours: bool) -> float:
    sign = -1.0 if text.strip().startswith("-") else 1.0
    h, m, s = (abs(float(x)) for x in text.split(":"))
    value = h + m / 60 + s / 3600
    return sign * value * (15.0 if hours else 1.0)


def _camera_number(stream: str) -> int:
    match = re.search(r"(\d+)$", stream)
    return 2 if match and match.group(1) == "2" else 1


def _obs_mode(height: int, width: int) -> tuple[str, str]:
    if width >= 2000 and height >= 1000:
        return "IMAG_MBI", "MBI"
    if width >= 2000:
        return "IMAG_MBIR", "MBI_REDUCED"
    return "IMAG", "STANDARD"


def simulated_state(stream: str, frame_shape: tuple[int, int]) -> list[Card]:
    """Return the aux-header cards of a simulated VAMPIRES night.

    Parameters
    ----------
    stream
        Stream name; a trailing ``2`` selects camera 2, anything else camera 1.
    frame_shape
        ``(height, width)`` of the frames (sets ``PRD-*``, ``OBS-MOD``, WCS reference pixel).

    Returns
    -------
    list of Card
        Telescope, AO188, WPU, VAMPIRES devices, camera and WCS keywords.
    """
    height, width = frame_shape
    cam = _camera_number(stream)
    obs_mod, crop = _obs_mode(height, width)
    x0 = max(0, (_FULL[1] - width) // 2 // 4 * 4)
    y0 = max(0, (_FULL[0] - height) // 2 // 4 * 4)
    obj, ra, dec = TARGET
    ra_deg, dec_deg = _sexagesimal_deg(ra, True), _sexagesimal_deg(dec, False)
    zd = 90.0 - _ALTITUDE
    airmass = 1.0 / math.cos(math.radians(zd))
    scale = _PLATE_SCALE_MAS[cam] / 3.6e6
    rot = math.radians(_INST_PA[cam] + _IMRPAD)
    sx, sy = -scale, (-scale if cam == 1 else scale)
    cd11, cd12 = sx * math.cos(rot), -sy * math.sin(rot)
    cd21, cd22 = sx * math.sin(rot), sy * math.cos(rot)
    cards: list[Card] = [
        ("OBJECT", obj, "Object (simulated)"),
        ("OBSERVER", "scexao", "Observer"),
        ("PROP-ID", "o00000", "Proposal ID"),
        ("TELESCOP", "Subaru", "Telescope/System which Inst. is attached"),
        ("INSTRUME", "SCExAO", "Instrument name"),
        ("OBSERVAT", "NAOJ", "Observatory"),
        ("TIMESYS", "UTC", "Time System used in the header"),
        ("RADESYS", "FK5", "The equatorial coordinate system"),
        ("EQUINOX", 2000.0, "[yr] Standard FK5"),
        ("RA", ra, "RA of telescope pointing (HH:MM:SS.SSS)"),
        ("DEC", dec, "DEC of telescope pointing (+/-DD:MM:SS.SS)"),
        ("RA2000", ra, "RA(J2000) pointing (HH:MM:SS.SSS)"),
        ("DEC2000", dec, "DEC(J2000) pointing (+/-DD:MM:SS.SS)"),
        ("ALTITUDE", _ALTITUDE, "[deg] Altitude of telescope pointing"),
        ("AZIMUTH", 183.25, "[deg] Azimuth of telescope pointing"),
        ("ZD", zd, "[deg] Zenith distance of telescope pointing"),
        ("AIRMASS", airmass, "Typical air mass during exposure"),
        ("FOC-POS", "Nasmyth-IR", "Focus where a beam is represented"),
        ("D_IMRANG", 41.25, "[deg] IMR angle"),
        ("D_IMRPAD", _IMRPAD, "[deg] IMR position angle of dec. axis"),
        ("D_IMRPAP", -39.0, "[deg] IMR pupil position angle"),
        ("D_IMRMOD", "ADI", "IMR mode"),
        ("POLARIZ1", "NONE", "Identifier of polarizer"),
        ("RET-ANG1", 0.0, "[deg] Polarization angle of first retarder plate"),
        ("RET-ANG2", 0.0, "[deg] Polarization angle of second retarder plate"),
        ("RET-MOD1", "NONE", "Retarder 1 mode"),
        ("RET-MOD2", "NONE", "Retarder 2 mode"),
        ("P_RTAGL1", 0.0, "[deg] WPU HWP angle"),
        ("U_BS", "PBS", "VAMPIRES beamsplitter"),
        ("U_FILTER", "Open", "VAMPIRES filter wheel"),
        ("U_DIFFL1", "Open", "VAMPIRES differential filter 1"),
        ("U_DIFFL2", "Open", "VAMPIRES differential filter 2"),
        ("U_MBI", "Dichroics" if crop.startswith("MBI") else "Open", "VAMPIRES MBI wheel"),
        ("U_FLDSTP", "Fieldstop", "VAMPIRES field stop state"),
        ("U_MASK", "Open", "VAMPIRES pupil mask"),
        ("U_FLCST", "OUT", "VAMPIRES FLC stage status (IN/OUT)"),
        ("U_FLCEN", False, "VAMPIRES FLC enabled"),
        ("U_PUPST", "OUT", "VAMPIRES pupil lens status"),
        ("U_TRIGEN", True, "VAMPIRES trigger micro-controller enabled"),
        ("X_POLAR", "OUT", "SCExAO polarizer"),
        ("FILTER01", "Open", "Primary filter name"),
        ("FILTER02", "Open", "Secondary filter name"),
        ("U_CAMERA", cam, "VAMPIRES camera number (1 or 2)"),
        ("DETECTOR", f"VCAM{cam} - OrcaQ", "Name of the detector"),
        ("U_DETMOD", "FAST", "VAMPIRES detector readout mode (Fast/Slow)"),
        ("DATA-TYP", "TEST", "Type / Characteristics of this data"),
        ("OBS-MOD", obs_mod, "Observation Mode"),
        ("EXPTIME", 0.001, "[s] Total integration time of the frame"),
        ("EXTTRIG", True, "Exposure of detector by an external trigger"),
        ("PRD-MIN1", x0, "[pixel] Origin in X of the cropped window"),
        ("PRD-MIN2", y0, "[pixel] Origin in Y of the cropped window"),
        ("PRD-RNG1", int(width), "[pixel] Range in X of the cropped window"),
        ("PRD-RNG2", int(height), "[pixel] Range in Y of the cropped window"),
        ("BIN-FCT1", 1, "[pixel] Binning factor of X axis"),
        ("BIN-FCT2", 1, "[pixel] Binning factor of Y axis"),
        ("GAIN", 0.103, "[e/adu] AD conversion factor"),
        ("BUNIT", "adu", "Unit of original values"),
        ("INST-PA", _INST_PA[cam], "[deg] Instrument PA offset"),
        ("WCSNAME", "PRIMARY", "Description of coordinate system"),
        ("WCS-ORIG", "SUBARU", "Origin of the WCS value"),
        ("CTYPE1", "RA---TAN", "Pixel coordinate system"),
        ("CTYPE2", "DEC--TAN", "Pixel coordinate system"),
        ("CUNIT1", "deg", "Units used in both CRVAL1 and CDELT1"),
        ("CUNIT2", "deg", "Units used in both CRVAL2 and CDELT2"),
        ("CRPIX1", width / 2 + 0.5, "[pixel] Reference pixel in X"),
        ("CRPIX2", height / 2 + 0.5, "[pixel] Reference pixel in Y"),
        ("CRVAL1", ra_deg, "Physical value of the reference pixel X"),
        ("CRVAL2", dec_deg, "Physical value of the reference pixel Y"),
        ("CDELT1", sx, "X Scale projected on detector (#/pix)"),
        ("CDELT2", sy, "Y Scale projected on detector (#/pix)"),
        ("CD1_1", cd11, "Pixel coordinate translation matrix"),
        ("CD1_2", cd12, "Pixel coordinate translation matrix"),
        ("CD2_1", cd21, "Pixel coordinate translation matrix"),
        ("CD2_2", cd22, "Pixel coordinate translation matrix"),
        ("LONPOLE", 180.0, "[deg] The North Pole of standard system"),
    ]
    return cards
