from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import frames_u16, make_job
from vampires.fitslog.header import format_card
from vampires.fitslog.names import cube_filename, cube_folder, parse_cube_filename
from vampires.fitslog.recover import recover_folder, recover_tmp
from vampires.fitslog.writer import CubeWriter


def test_write_cube_verified(tmp_path, check_cube) -> None:
    frames = frames_u16(5)
    result = CubeWriter().write(make_job(tmp_path, frames, dropped_before=3))
    assert result.ok, result.error
    assert result.frames == 5
    _data, header, times = check_cube(result.path, frames)
    assert header["LOGDROP"] == 3
    assert header["LOGCLOSE"] == "full"
    assert header["DATA-TYP"] == "OBJECT"
    assert list(times.cnt0) == list(range(100, 105))
    assert result.nbytes == result.path.stat().st_size
    assert result.nbytes % 2880 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [result.path.name, result.path.with_suffix(".txt").name]
    )


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "uint32", "float32", "float64"])
def test_other_pixel_types(tmp_path, dtype, check_cube) -> None:
    rng = np.random.default_rng(3)
    frames = (rng.random((3, 5, 7)) * 200).astype(dtype)
    result = CubeWriter().write(make_job(tmp_path, frames))
    assert result.ok
    data, _, _ = check_cube(result.path, frames)
    assert data.dtype.str[1:] == np.dtype(dtype).str[1:]


def test_names_and_folders() -> None:
    t = 1718150389.294402958  # 2024-06-11 23:59:49.294402958 UTC
    assert cube_filename("vcam1", t).startswith("vcam1_23:59:49.2944")
    assert parse_cube_filename(cube_filename("vcam1", t))[0] == "vcam1"
    assert cube_folder("vcam1", t, root=Path("/r"), dirname=None) == Path("/r/20240611/vcam1")
    assert cube_folder("vcam1", t + 11, root=Path("/r"), dirname=None) == Path("/r/20240612/vcam1")
    assert cube_folder("vcam1", t, root=Path("/r"), dirname=Path("/x")) == Path("/x")
    assert cube_filename("s", 5.0) == "s_00:00:05.000000000.fits"
    assert parse_cube_filename("foo.fits") is None


def test_same_first_frame_time_never_overwrites(tmp_path) -> None:
    t0 = 1_700_000_000.0
    a = CubeWriter().write(make_job(tmp_path, frames_u16(2), t0=t0))
    b = CubeWriter().write(make_job(tmp_path, frames_u16(2, seed=1), t0=t0))
    assert a.ok
    assert b.ok
    assert a.path != b.path


def test_aux_header_and_provider(tmp_path, shm_dir, check_cube) -> None:
    aux = shm_dir / "vcam1.aux.fits"
    cards = [
        format_card("SIMPLE", True),
        format_card("BITPIX", 8),
        format_card("NAXIS", 0),
        format_card("OBJECT", "from aux"),
        format_card("EXPTIME", 99.0),
    ]
    text = "".join(cards) + "END".ljust(80)
    aux.write_bytes((text + " " * (-len(text) % 2880)).encode())
    result = CubeWriter().write(make_job(tmp_path, frames_u16(2)))
    _, header, _ = check_cube(result.path, keys=False)
    assert header["OBJECT"] == "from aux"
    assert header["EXPTIME"] == 0.01  # camera wins
    assert "ALTITUDE" not in header  # aux replaces the simulated state
    provided = CubeWriter(header_provider=lambda: {"OBJECT": ("script", "c"), "FOO": 1})
    result = provided.write(make_job(tmp_path, frames_u16(2)))
    _, header, _ = check_cube(result.path, keys=False)
    assert header["OBJECT"] == "script"
    assert header["FOO"] == 1


def test_unwritable_folder_reports(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CubeWriter().write(make_job(blocker / "sub", frames_u16(2)))
    assert not result.ok
    assert result.path is None
    assert "cannot write" in result.error


def _failing_after(limit: int, err: int = errno.ENOSPC):
    written = [0]

    def write_chunk(fd: int, data: memoryview) -> int:
        if written[0] + len(data) > limit:
            room = max(0, limit - written[0])
            if room:
                n = os.write(fd, data[:room])
                written[0] += n
                return n
            raise OSError(err, os.strerror(err))
        n = os.write(fd, data)
        written[0] += n
        return n

    return write_chunk


def test_disk_full_truncates_cleanly(tmp_path, check_cube) -> None:
    frames = frames_u16(6, shape=(40, 50))
    frame_bytes = 40 * 50 * 2
    job = make_job(tmp_path, frames)
    header_len = len(CubeWriter().header(job))
    sidecar_len = 4000  # sidecar is written first, it counts against the limit too
    writer = CubeWriter(
        write_chunk=_failing_after(sidecar_len + header_len + 3 * frame_bytes + 100),
        chunk_bytes=1000,
    )
    result = writer.write(job)
    assert not result.ok
    assert "disk full" in result.error
    assert result.path is not None
    _data, header, _times = check_cube(result.path, frames[: result.frames])
    assert 1 <= result.frames < 6
    assert header["LOGCLOSE"] == "recovered"
    assert not list(tmp_path.glob("*.tmp"))


def test_disk_full_in_header_keeps_nothing_half(tmp_path) -> None:
    writer = CubeWriter(write_chunk=_failing_after(0), chunk_bytes=100)
    result = writer.write(make_job(tmp_path, frames_u16(2)))
    assert not result.ok
    assert result.path is None
    assert not list(tmp_path.glob("*.fits"))


def test_recover_truncated_tmp(tmp_path, check_cube) -> None:
    frames = frames_u16(4, shape=(30, 20))
    result = CubeWriter().write(make_job(tmp_path, frames))
    path = result.path
    assert path is not None
    # simulate a kill in the middle of frame 3: .fits.tmp with 2.5 frames, sidecar .txt.tmp
    os.rename(path.with_suffix(".txt"), path.with_suffix(".txt.tmp"))
    tmp = path.with_name(path.name + ".tmp")
    os.rename(path, tmp)
    _, offset = 0, len(CubeWriter().header(make_job(tmp_path, frames)))
    os.truncate(tmp, offset + int(2.5 * 30 * 20 * 2))
    dry = recover_folder(tmp_path, dry_run=True)
    assert [r.ok for r in dry] == [True, True]
    assert tmp.exists()
    reports = recover_folder(tmp_path)
    assert reports[0].ok, reports[0].message
    assert reports[0].frames == 2
    assert reports[0].lost == 2
    _data, header, times = check_cube(path, frames[:2])
    assert header["LOGCLOSE"] == "recovered"
    assert header["UT-END"] != header["UT-STR"]
    assert list(times.cnt0) == [100, 101]
    assert not list(tmp_path.glob("*.tmp"))


def test_recover_bad_files(tmp_path) -> None:
    (tmp_path / "junk.fits.tmp").write_bytes(b"not fits at all")
    (tmp_path / "orphan.txt.tmp").write_text("# nothing\n")
    empty = tmp_path / "e.fits.tmp"
    header = "".join(
        format_card(*c)
        for c in [
            ("SIMPLE", True),
            ("BITPIX", 16),
            ("NAXIS", 3),
            ("NAXIS1", 4),
            ("NAXIS2", 4),
            ("NAXIS3", 9),
        ]
    ) + "END".ljust(80)
    empty.write_bytes((header + " " * (-len(header) % 2880)).encode())
    reports = {r.source.name: r for r in recover_folder(tmp_path)}
    assert not reports["junk.fits.tmp"].ok
    assert not reports["orphan.txt.tmp"].ok
    assert "no complete frame" in reports["e.fits.tmp"].message
    assert (tmp_path / "junk.fits.tmp").read_bytes() == b"not fits at all"
    assert not recover_tmp(tmp_path / "x.dat").ok


def test_recover_command(tmp_path, capsys) -> None:
    from vampires.cli.recover import main

    assert main([str(tmp_path)]) == 0
    assert "nothing to recover" in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 1
    (tmp_path / "junk.fits.tmp").write_bytes(b"x")
    assert main([str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_failing_header_provider_does_not_lose_the_cube(tmp_path, check_cube, caplog) -> None:
    def broken() -> dict:
        msg = "redis is down"
        raise KeyError(msg)

    result = CubeWriter(header_provider=broken).write(make_job(tmp_path, frames_u16(2)))
    assert result.ok
    check_cube(result.path, keys=False)
    assert "header provider failed" in caplog.text


def test_open_partial_maps_complete_frames_only(tmp_path) -> None:
    from vampires.errors import FitsFormatError
    from vampires.fitslog import open_partial

    frames = frames_u16(4, shape=(30, 20))
    result = CubeWriter().write(make_job(tmp_path, frames))
    assert result.path is not None
    cube = open_partial(result.path)
    assert (cube.frames, cube.planned) == (4, 4)
    assert np.array_equal(cube.physical(slice(None)), frames)
    assert not cube.data.flags.writeable
    # cut in the middle of frame 3, as a cube being written looks between flushes
    tmp = result.path.with_name(result.path.name + ".tmp")
    os.rename(result.path, tmp)
    header_len = len(CubeWriter().header(make_job(tmp_path, frames)))
    os.truncate(tmp, header_len + int(2.5 * 30 * 20 * 2))
    cube = open_partial(tmp)
    assert (cube.frames, cube.planned) == (2, 4)
    assert np.array_equal(cube.physical(1), frames[1])
    os.truncate(tmp, header_len)
    assert open_partial(tmp).frames == 0
    for bad in (tmp_path / "missing.fits.tmp", tmp_path / "junk.fits.tmp"):
        if bad.name.startswith("junk"):
            bad.write_bytes(b"not a FITS file" * 300)
        with pytest.raises(FitsFormatError):
            open_partial(bad)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint32", "float32"])
def test_open_partial_other_pixel_types(tmp_path, dtype) -> None:
    from vampires.fitslog import open_partial

    info = np.iinfo(dtype) if dtype != "float32" else None
    rng = np.random.default_rng(1)
    if info is None:
        frames = rng.normal(size=(3, 5, 7)).astype(dtype)
    else:
        frames = rng.integers(info.min, info.max, (3, 5, 7), dtype=dtype, endpoint=True)
    result = CubeWriter().write(make_job(tmp_path, frames))
    assert result.path is not None
    got = open_partial(result.path).physical(slice(None))
    assert got.dtype == np.dtype(dtype)
    assert np.array_equal(got, frames)
