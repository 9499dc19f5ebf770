"""The minimal header reader against files written by astropy and fitsio."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vampires.errors import FitsFormatError
from vampires.watch.headers import (
    BLOCK_NBYTES,
    SUMMARY_KEYWORDS,
    CubeHeader,
    parse_card_value,
    read_cube_header,
    read_header,
)

fitsio = pytest.importorskip("fitsio")


def _card(text: str) -> bytes:
    return text.ljust(80).encode("ascii")


def test_astropy_cube_shape_and_keywords(tmp_path: Path) -> None:
    path = tmp_path / "vcam1_00:00:01.000000000.fits"
    data = np.arange(3 * 8 * 10, dtype=np.uint16).reshape(3, 8, 10)
    header = fits.Header({"DATA-TYP": "OBJECT", "OBSERVER": "scexao"})
    fits.PrimaryHDU(data, header=header).writeto(path)
    with fits.open(path) as hdul:
        header_len = len(hdul[0].header.tostring())
    got = read_cube_header(path)
    assert got.shape == (3, 8, 10) == data.shape  # numpy order: (NAXIS3, NAXIS2, NAXIS1)
    assert got.bitpix == 16
    assert (got.data_type, got.observer) == ("OBJECT", "scexao")
    assert not got.compressed
    assert got.dropped == 0
    assert got.data_nbytes == data.nbytes
    assert got.bytes_read == header_len  # the header blocks and nothing else
    assert got.min_file_nbytes <= path.stat().st_size


def test_fitsio_cube_and_image(tmp_path: Path) -> None:
    cube = tmp_path / "cube.fits"
    data = np.ones((4, 6, 5), dtype=np.uint16)
    fitsio.write(str(cube), data, header=[{"name": "DATA-TYP", "value": "FLAT"}], clobber=True)
    got = read_cube_header(cube)
    assert got.shape == (4, 6, 5)
    assert got.data_type == "FLAT"
    assert got.observer is None
    image = tmp_path / "image.fits"
    fitsio.write(str(image), np.zeros((7, 9), dtype=np.float32), clobber=True)
    got = read_cube_header(image)
    assert (got.shape, got.bitpix) == ((7, 9), -32)


def test_header_only_big_cube_reads_one_block(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "big.fits", (1000, 1104, 2228))
    assert path.stat().st_size == 2880 + 4919424000 + (-4919424000 % 2880)
    got = read_cube_header(path)
    assert got.shape == (1000, 1104, 2228)
    assert got.data_nbytes == 1000 * 1104 * 2228 * 2
    assert got.bytes_read == BLOCK_NBYTES  # never a byte of pixel data


def test_long_header_read_up_to_end(tmp_path: Path, make_cube) -> None:
    cards = {f"KEY{i:05d}": float(i) for i in range(500)}
    cards.update({"LOGDROP": 3, "LOGDRPIN": 4})
    path = make_cube(tmp_path / "long.fits", (10, 20, 30), cards=cards)
    got = read_cube_header(path)
    blocks = -(-(500 + 12) // 36)  # cards incl. structural ones and END
    assert got.bytes_read == blocks * BLOCK_NBYTES
    assert got.dropped == 7
    assert got.shape == (10, 20, 30)


def test_hierarch_and_comment_cards_are_skipped(tmp_path: Path, make_cube) -> None:
    cards = {"HIERARCH VERYLONGKEYWORD": 1, "COMMENT": "a comment = 'x'", "HISTORY": "h"}
    path = make_cube(tmp_path / "h.fits", (2, 3, 4), cards=cards)
    assert b"HIERARCH VERYLONGKEYWORD = 1" in path.read_bytes()[:2880]
    assert read_cube_header(path).shape == (2, 3, 4)


@pytest.mark.parametrize("writer", ["astropy", "fitsio"])
def test_tile_compressed_fz(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "vcam1_00:00:01.000000000.fits.fz"
    data = np.arange(5 * 16 * 12, dtype=np.uint16).reshape(5, 16, 12)
    if writer == "astropy":
        hdu = fits.CompImageHDU(data, header=fits.Header({"DATA-TYP": "DARK", "OBSERVER": "me"}))
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    else:
        hdr = [{"name": "DATA-TYP", "value": "DARK"}, {"name": "OBSERVER", "value": "me"}]
        fitsio.write(str(path), data, header=hdr, compress="RICE", clobber=True)
    got = read_cube_header(path)
    assert got.compressed
    assert got.shape == (5, 16, 12)
    assert got.bitpix == 16
    assert (got.data_type, got.observer) == ("DARK", "me")
    assert got.data_nbytes == data.nbytes
    # primary header + extension header, never the compressed heap
    assert got.bytes_read % BLOCK_NBYTES == 0
    assert got.bytes_read < path.stat().st_size
    assert got.min_file_nbytes <= path.stat().st_size


def test_image_in_first_extension(tmp_path: Path) -> None:
    path = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 3), np.int32))]).writeto(path)
    got = read_cube_header(path)
    assert (got.shape, got.bitpix, got.compressed) == ((2, 3), 32, False)


def test_empty_primary_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    fits.PrimaryHDU(header=fits.Header({"DATA-TYP": "TEST"})).writeto(path)
    got = read_cube_header(path)
    assert got.shape == ()
    assert got.data_type == "TEST"


@pytest.mark.parametrize(
    ("card", "value"),
    [
        ("DATA-TYP= 'DARK    '           / Data type", "DARK"),
        ("OBSERVER= 'O''Brien'", "O'Brien"),
        ("OBJECT  = 'a / b'  / slash inside the string", "a / b"),
        ("OBSERVER= ''", ""),
        ("SIMPLE  =                    T", True),
        ("EXTTRIG =                    F / comment", False),
        ("NAXIS1  =                 2228 / width", 2228),
        ("EXPTIME =            1.234D-03", 1.234e-3),
        ("EXPTIME =              -4.5E2", -450.0),
        ("UNDEF   =                      / no value", None),
        ("CPLX    = (1.0, 2.0)", None),
    ],
)
def test_parse_card_value(card: str, value: object) -> None:
    assert parse_card_value(_card(card)) == value


def test_read_header_keywords_filter_and_first_wins() -> None:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    0",
        "OBSERVER= 'first'",
        "OBSERVER= 'second'",
        "OTHER   = 5",
        "END",
    ]
    raw = b"".join(_card(c) for c in cards).ljust(2880, b" ")
    got, nbytes = read_header(io.BytesIO(raw + b"\0" * 2880))
    assert nbytes == 2880
    assert got["OBSERVER"] == "first"
    got, _ = read_header(io.BytesIO(raw), keywords={"BITPIX"})
    assert got == {"BITPIX": 16}
    got, _ = read_header(io.BytesIO(raw), keywords=SUMMARY_KEYWORDS)
    assert got == {"SIMPLE": True, "BITPIX": 16, "NAXIS": 0, "OBSERVER": "first"}


def test_keyword_match_must_start_a_card() -> None:
    # 'NAXIS1  = ' inside a comment or a longer keyword is not the NAXIS1 card
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    1",
        "XNAXIS1 =                   99 / NAXIS1  = 77",
        "NAXIS1  =                    5",
        "COMMENT   END      not the end card",
        "END",
    ]
    raw = b"".join(_card(c) for c in cards).ljust(2880, b" ")
    for keywords in (SUMMARY_KEYWORDS, None):
        got, nbytes = read_header(io.BytesIO(raw), keywords=keywords)
        assert got["NAXIS1"] == 5
        assert nbytes == 2880


def test_truncated_data_is_reported_not_raised(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "cut.fits", (100, 1104, 2228))
    with path.open("r+b") as fh:
        fh.truncate(2880 + 1000)
    got = read_cube_header(path)
    assert got.shape == (100, 1104, 2228)
    assert got.min_file_nbytes > path.stat().st_size


def test_missing_final_padding_is_not_truncation(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "nopad.fits", (1, 10, 10))
    with path.open("r+b") as fh:
        fh.truncate(2880 + 200)
    got = read_cube_header(path)
    assert got.min_file_nbytes == path.stat().st_size


def _broken(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, this is a sidecar text file\n" * 100, "not a FITS file"),
        (_card("SIMPLE  =                    T") * 20, "truncated header"),
        (
            (_card("SIMPLE  =                    T") + _card("BITPIX  = 16") + _card("END")).ljust(
                2880
            ),
            "NAXIS missing",
        ),
        (
            (
                _card("SIMPLE  = T") + _card("BITPIX  = 12") + _card("NAXIS   = 0") + _card("END")
            ).ljust(2880),
            "BITPIX = 12",
        ),
        (
            (
                _card("SIMPLE  = T")
                + _card("BITPIX  = 16")
                + _card("NAXIS   = 2")
                + _card("NAXIS1  = -3")
                + _card("NAXIS2  = 'x'")
                + _card("END")
            ).ljust(2880),
            "NAXIS2 not a non-negative integer",
        ),
        (_card("SIMPLE  = T").ljust(2880) * 1001, "no END card"),
    ],
)
def test_broken_files_raise_short_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = _broken(tmp_path, "bad.fits", content)
    with pytest.raises(FitsFormatError, match=reason):
        read_cube_header(path)


def test_bad_extension_header(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "x.fits.fz", ())
    with path.open("ab") as fh:
        fh.write(b"garbage" * 1000)
    with pytest.raises(FitsFormatError, match="no XTENSION card"):
        read_cube_header(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FitsFormatError, match="cannot read"):
        read_cube_header(tmp_path / "gone.fits")
    with pytest.raises(FitsFormatError, match="cannot read"):
        read_cube_header(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "locked.fits", (1, 2, 3))
    path.chmod(0)
    with pytest.raises(FitsFormatError, match="cannot read: Permission denied"):
        read_cube_header(path)


def test_cube_header_is_frozen() -> None:
    import attrs

    header = CubeHeader(shape=(1, 2, 3), bitpix=16)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        header.bitpix = 8  # type: ignore[misc]
