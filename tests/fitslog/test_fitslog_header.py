from __future__ import annotations

import datetime as dt

import pytest
from astropy.io import fits

from vampires.errors import FitsFormatError
from vampires.fitslog.header import (
    CARD,
    card_name,
    cube_header,
    format_card,
    normalize_cards,
    parse_header,
    timing_cards,
)
from vampires.fitslog.instrument import simulated_state
from vampires.kernels import fits_format


def _parse(card: str) -> fits.Card:
    return fits.Card.fromstring(card)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("EXPTIME", 1e-3, 0.001),
        ("NAXIS1", 2236, 2236),
        ("EXTTRIG", True, True),
        ("EXTTRIG", "#FALSE#", False),
        ("EXTTRIG", 1, True),
        ("OBJECT", "HD 169142", "HD 169142"),
        ("OBJECT", "it's", "it's"),
        ("MYFLOAT", 1e-300, 1e-300),
        ("MYFLOAT", 12345678.9, 12345678.9),
        ("MYFLOAT", 3.0, 3.0),
        ("CD1_1", -1.6411111111e-06, -1.6411111111e-06),
    ],
)
def test_cards_parse_back(name, value, expected) -> None:
    card = format_card(name, value, "a comment")
    assert len(card) == CARD
    parsed = _parse(card)
    assert parsed.keyword == name
    assert parsed.value == expected
    assert type(parsed.value) is type(expected)


def test_fixed_format_and_precision() -> None:
    card = format_card("EXPTIME", 0.00123456789, "[s]")
    assert card[8:10] == "= "
    assert card[10:30] == "0.00123457".rjust(20)  # dictionary precision: 8 decimals
    assert format_card("BITPIX", 16)[29] == "6"  # right-justified to column 30
    assert format_card("OBJECT", "a")[10:20] == "'a       '"
    assert format_card("SIMPLE", True)[29] == "T"


def test_hierarch_and_names() -> None:
    card = format_card("VERYLONGKEYWORD1", 2.5, "long name")
    assert card.startswith("HIERARCH VERYLONGKEYWORD1 = 2.5")
    assert card_name(card) == "VERYLONGKEYWORD1"
    assert _parse(card).value == 2.5
    assert format_card("exptime", 1.0).startswith("EXPTIME =")
    assert card_name(format_card("DATE-OBS", "2024-01-01")) == "DATE-OBS"
    for bad in ("A=B", "é", "X" * 80):
        with pytest.raises(FitsFormatError):
            format_card(bad, 1)


def test_long_strings_nan_and_comments_are_cut() -> None:
    card = format_card("NOTE", "x" * 200, "c" * 200)
    assert len(card) == CARD
    assert _parse(card).value == "x" * 68
    assert _parse(format_card("NOTE", "q'" * 50)).value.startswith("q'q'")
    assert _parse(format_card("BAD", float("nan"))).value == "nan"
    assert len(format_card("C", 1, "ünïcode")) == CARD
    assert format_card("COMMENT", "hello").startswith("COMMENT hello")


def test_normalize_cards() -> None:
    assert normalize_cards({"A": 1, "B": (2, "two")}) == [("A", 1, ""), ("B", 2, "two")]
    assert normalize_cards([("A", 1)]) == [("A", 1, "")]
    assert normalize_cards(None) == []
    with pytest.raises(FitsFormatError):
        normalize_cards([("A",)])  # type: ignore[list-item]


def test_timing_cards() -> None:
    t0 = dt.datetime(2024, 6, 11, 23, 59, 59, 500000, tzinfo=dt.UTC).timestamp()
    cards = {n: v for n, v, _ in timing_cards(t0, t0 + 1.0, written=t0 + 2, source="logger")}
    assert cards["UT-STR"] == "23:59:59.500000"
    assert cards["UT-END"] == "00:00:00.500000"
    assert cards["UT"] == "00:00:00.000000"
    assert cards["HST-STR"] == "13:59:59.500000"
    assert cards["DATE-OBS"] == "2024-06-11"
    assert cards["DATE"] == "2024-06-12T00:00:01"
    assert cards["MJD"] == pytest.approx(60473.0, abs=1e-9)
    assert cards["MJD-STR"] < cards["MJD"] < cards["MJD-END"]


def test_cube_header_order_and_override() -> None:
    aux = [
        format_card("OBJECT", "from aux"),
        format_card("EXPTIME", 9.0),
        format_card("NAXIS1", 999),  # structural: dropped
        format_card("COMMENT", "kept"),
    ]
    stream = [("EXPTIME", 0.5, "camera"), ("_MAQTIME", 1, "private"), ("BZERO", 3, "no")]
    header = cube_header(
        fmt=fits_format("uint16"),
        frame_shape=(7, 5),
        nframes=3,
        aux=aux,
        stream=stream,
        timing=timing_cards(0.0, 1.0, written=0.0, source="logger"),
        accounting=[("LOGDROP", 0, "")],
    )
    assert len(header) % 2880 == 0
    cards = parse_header(header)
    names = [card_name(c) for c in cards]
    assert names[:7] == ["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND"]
    assert "_MAQTIME" not in names
    assert names.count("EXPTIME") == 1
    assert names.count("BZERO") == 1
    assert names.index("OBJECT") < names.index("EXPTIME") < names.index("UT")
    hdr = fits.Header.fromstring(header.decode())
    assert hdr["EXPTIME"] == 0.5  # camera wins over aux
    assert hdr["NAXIS1"] == 5
    assert hdr["BZERO"] == 32768
    assert hdr["COMMENT"][0] == "kept"


def test_simulated_state_is_complete_and_formats() -> None:
    for stream, shape in (("vcam1", (1096, 2236)), ("vcam2", (536, 536)), ("x", (540, 2232))):
        cards = simulated_state(stream, shape)
        names = {c[0] for c in cards}
        for key in ("OBJECT", "RA", "DEC", "RADESYS", "EQUINOX", "D_IMRPAP", "U_FLDSTP"):
            assert key in names
        for card in cards:
            assert len(format_card(*card)) == CARD
