"""Watcher: folders and globs, ordering, cache, broken files, flags, watch loop."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import attrs
import numpy as np
import pytest
from astropy.io import fits

from vampires.errors import ConfigError
from vampires.watch import FileSummary, Flag, FolderSummary, Watcher, snapshot_dict

T0 = 1_718_064_000.0  # 2024-06-11 00:00:00 UT


class Clock:
    """A settable clock for stall detection."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _names(folder: FolderSummary) -> list[str]:
    return [f.name for f in folder.files]


# -- patterns -------------------------------------------------------------------------


def test_literal_folder(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "vcam1" / "a.fits", (2, 3, 4), mtime=T0)
    (folder,) = Watcher(tmp_path / "vcam1", siblings=False).scan()
    assert folder.exists
    assert folder.path == tmp_path / "vcam1"
    assert folder.n_files == 1
    assert folder.files[0].shape == (2, 3, 4)


def test_glob_expanded_every_scan_and_waiting(tmp_path: Path, make_cube) -> None:
    pattern = str(tmp_path / "20240611" / "vcam*")
    watcher = Watcher([pattern])
    (waiting,) = watcher.scan()
    assert not waiting.exists
    assert waiting.is_glob
    assert waiting.path == Path(pattern)
    make_cube(tmp_path / "20240611" / "vcam1" / "a.fits", (2, 3, 4))
    (vcam1,) = watcher.scan()
    assert vcam1.path == tmp_path / "20240611" / "vcam1"
    assert vcam1.n_files == 1
    (tmp_path / "20240611" / "vcam2").mkdir()  # appears mid-run: picked up, no restart
    (tmp_path / "20240611" / "vcam9.txt").write_text("a file matching the glob is ignored")
    folders = watcher.scan()
    assert [f.path.name for f in folders] == ["vcam1", "vcam2"]
    assert folders[1].n_files == 0


def test_shell_expanded_folders_pick_up_siblings(tmp_path: Path, make_cube) -> None:
    night = tmp_path / "20240611"
    (night / "vcam1").mkdir(parents=True)
    (night / "vcam1_old").mkdir()
    (night / "other").mkdir()
    watcher = Watcher([str(night / "vcam1")])  # what bash passes for vcam* with vcam1 only
    assert [f.path.name for f in watcher.scan()] == ["vcam1"]
    (night / "vcam2").mkdir()
    (night / "vcam10").mkdir()
    assert [f.path.name for f in watcher.scan()] == ["vcam1", "vcam10", "vcam2"]
    exact = Watcher([str(night / "vcam1")], siblings=False)
    assert [f.path.name for f in exact.scan()] == ["vcam1"]
    # both names given (shell-expanded): each folder once
    both = Watcher([str(night / "vcam1"), str(night / "vcam2")])
    assert [f.path.name for f in both.scan()] == ["vcam1", "vcam10", "vcam2"]


def test_missing_literal_folder_waits_then_appears(tmp_path: Path, make_cube) -> None:
    target = tmp_path / "night" / "vcam2"
    watcher = Watcher([str(target)])
    (folder,) = watcher.scan()
    assert not folder.exists
    assert not folder.is_glob
    make_cube(target / "vcam2_00:00:01.000000000.fits", (1, 2, 3))
    (folder,) = watcher.scan()
    assert folder.exists
    assert folder.n_files == 1


def test_missing_sibling_shows_waiting_next_to_existing(tmp_path: Path) -> None:
    (tmp_path / "vcam1").mkdir()
    folders = Watcher([str(tmp_path / "vcam2")]).scan()
    assert [(f.path.name, f.exists) for f in folders] == [("vcam1", True), ("vcam2", False)]


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "night" / "vcam1").mkdir(parents=True)
    (folder,) = Watcher(["~/night/vcam*"]).scan()
    assert folder.path == tmp_path / "night" / "vcam1"


def test_all_nights_glob(tmp_path: Path) -> None:
    for night in ("20240611", "20240612"):
        for cam in ("vcam1", "vcam2"):
            (tmp_path / night / cam).mkdir(parents=True)
    folders = Watcher([str(tmp_path / "*" / "vcam*")]).scan()
    assert [f.path.relative_to(tmp_path).as_posix() for f in folders] == [
        "20240611/vcam1",
        "20240611/vcam2",
        "20240612/vcam1",
        "20240612/vcam2",
    ]


def test_duplicate_patterns_give_one_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    folders = Watcher(
        [str(tmp_path / "data"), str(tmp_path / "data/"), str(tmp_path / "d*")]
    ).scan()
    assert len(folders) == 1


def test_folder_removed_mid_run(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "data" / "a.fits", (1, 2, 3))
    watcher = Watcher([str(tmp_path / "data")])
    assert watcher.scan()[0].n_files == 1
    (tmp_path / "data" / "a.fits").unlink()
    (tmp_path / "data").rmdir()
    (folder,) = watcher.scan()
    assert not folder.exists


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_unlistable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        (folder,) = Watcher([str(locked)]).scan()
    finally:
        locked.chmod(0o755)
    assert folder.error is not None
    assert "Permission denied" in folder.error


# -- files ----------------------------------------------------------------------------


def test_only_fits_and_fz_are_listed(tmp_path: Path, make_cube) -> None:
    d = tmp_path / "vcam1"
    make_cube(d / "vcam1_00:00:01.000000000.fits", (2, 3, 4), mtime=T0)
    make_cube(d / "vcam1_00:00:02.000000000.fits.tmp", (2, 3, 4), mtime=T0 + 3)
    (d / "vcam1_00:00:01.000000000.txt").write_text("# sidecar\n")
    (d / "notes.fits.txt").write_text("not fits")
    (d / "readme").write_text("x")
    (d / "subdir.fits").mkdir()
    data = np.zeros((2, 8, 8), np.uint16)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(d / "c.fits.fz")
    os.utime(d / "c.fits.fz", (T0 + 1, T0 + 1))
    (folder,) = Watcher([str(d)], n=5).scan()
    assert folder.n_files == 2
    # a cube being written (.fits.tmp) is the newest line, marked, not counted (issue 14)
    writing, *done = folder.files
    assert writing.name == "vcam1_00:00:02.000000000.fits.tmp"
    assert writing.writing
    assert Flag.WRITING in writing.flags
    folder = attrs.evolve(folder, files=tuple(done))
    assert _names(folder) == ["c.fits.fz", "vcam1_00:00:01.000000000.fits"]
    assert folder.files[0].compressed
    assert folder.files[0].shape == (2, 8, 8)
    sizes = (d / "c.fits.fz").stat().st_size + (d / "vcam1_00:00:01.000000000.fits").stat().st_size
    assert folder.nbytes == sizes


def test_fitsio_written_files(tmp_path: Path) -> None:
    fitsio = pytest.importorskip("fitsio")
    d = tmp_path / "vcam2"
    d.mkdir()
    data = np.zeros((3, 4, 5), np.uint16)
    header = [{"name": "DATA-TYP", "value": "OBJECT"}, {"name": "OBSERVER", "value": "obs"}]
    fitsio.write(str(d / "a.fits"), data, header=header, clobber=True)
    fitsio.write(str(d / "b.fits.fz"), data, header=header, compress="GZIP", clobber=True)
    os.utime(d / "a.fits", (T0, T0))
    os.utime(d / "b.fits.fz", (T0 + 1, T0 + 1))
    (folder,) = Watcher([str(d)]).scan()
    assert [(f.name, f.shape, f.data_type, f.observer, f.compressed) for f in folder.files] == [
        ("b.fits.fz", (3, 4, 5), "OBJECT", "obs", True),
        ("a.fits", (3, 4, 5), "OBJECT", "obs", False),
    ]


def test_newest_first_by_mtime_across_midnight(tmp_path: Path, make_cube) -> None:
    d = tmp_path / "20240611" / "vcam1"
    make_cube(d / "vcam1_23:59:34.528434921.fits", (611, 4, 4), mtime=T0 - 26)
    make_cube(d / "vcam1_23:59:49.294402958.fits", (249, 4, 4), mtime=T0 - 11)
    make_cube(d / "vcam1_00:00:03.628172287.fits", (1000, 4, 4), mtime=T0 + 3)
    (folder,) = Watcher([str(d)], n=3).scan()
    assert _names(folder) == [
        "vcam1_00:00:03.628172287.fits",
        "vcam1_23:59:49.294402958.fits",
        "vcam1_23:59:34.528434921.fits",
    ]
    assert folder.newest_mtime == pytest.approx(T0 + 3)


def test_n_newest(tmp_path: Path, make_cube) -> None:
    for i in range(5):
        make_cube(tmp_path / f"f{i}.fits", (1, 2, 2), mtime=T0 + i)
    assert _names(Watcher([str(tmp_path)]).scan()[0]) == ["f4.fits", "f3.fits"]
    assert _names(Watcher([str(tmp_path)], n=0).scan()[0]) == []
    (folder,) = Watcher([str(tmp_path)], n=50).scan()
    assert len(folder.files) == folder.n_files == 5


def test_broken_files_are_listed_with_reason(tmp_path: Path, make_cube) -> None:
    (tmp_path / "empty.fits").write_bytes(b"")
    (tmp_path / "text.fits").write_text("SIMPLE? no, a text file\n" * 200)
    good = make_cube(tmp_path / "good.fits", (10, 20, 30))
    header_only = good.read_bytes()[:1000]
    (tmp_path / "cut_header.fits").write_bytes(header_only)
    cut = make_cube(tmp_path / "cut_data.fits", (10, 20, 30))
    with cut.open("r+b") as fh:
        fh.truncate(4000)
    for i, name in enumerate(["empty", "text", "good", "cut_header", "cut_data"]):
        os.utime(tmp_path / f"{name}.fits", (T0 + i, T0 + i))
    (folder,) = Watcher([str(tmp_path)], n=10).scan()
    by_name = {f.name: f for f in folder.files}
    assert by_name["empty.fits"].error == "empty file"
    assert by_name["text.fits"].error == "not a FITS file"
    assert by_name["cut_header.fits"].error is not None
    assert by_name["cut_header.fits"].error.startswith("truncated header")
    assert by_name["cut_data.fits"].shape == (10, 20, 30)
    assert by_name["cut_data.fits"].error == "truncated: 4,000 of 14,880 bytes on disk"
    assert by_name["good.fits"].error is None
    assert folder.n_files == 5


def test_vanished_file_between_scans(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "a.fits", (1, 2, 3))
    watcher = Watcher([str(tmp_path)])
    assert watcher.scan()[0].n_files == 1
    path.unlink()
    assert watcher.scan()[0].n_files == 0


# -- cache ----------------------------------------------------------------------------


def test_refresh_reads_nothing_until_a_file_changes(tmp_path: Path, make_cube) -> None:
    for i in range(4):
        make_cube(tmp_path / f"f{i}.fits", (100, 1104, 2228), mtime=T0 + i)
    watcher = Watcher([str(tmp_path)], n=3, clock=Clock(T0 + 5))
    first = watcher.scan()
    assert watcher.last_stats.headers_read == 3
    assert watcher.last_stats.bytes_read == 3 * 2880  # header blocks only, no pixel data
    assert watcher.last_stats.files == 4
    again = watcher.scan()
    assert again == first
    assert watcher.last_stats.headers_read == 0
    assert watcher.last_stats.bytes_read == 0
    # a rewritten file (new mtime and size) is read again
    make_cube(tmp_path / "f3.fits", (50, 1104, 2228), mtime=T0 + 10)
    (folder,) = watcher.scan()
    assert watcher.last_stats.headers_read == 1
    assert folder.files[0].shape == (50, 1104, 2228)
    # a new file is read, the others come from the cache
    make_cube(tmp_path / "f9.fits", (7, 1104, 2228), mtime=T0 + 20)
    (folder,) = watcher.scan()
    assert watcher.last_stats.headers_read == 1
    assert _names(folder) == ["f9.fits", "f3.fits", "f2.fits"]


def test_same_mtime_new_size_is_read_again(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "a.fits", (10, 4, 4), mtime=T0)
    watcher = Watcher([str(tmp_path)])
    assert watcher.scan()[0].files[0].shape == (10, 4, 4)
    make_cube(path, (2000, 4, 4), mtime=T0)
    assert watcher.scan()[0].files[0].shape == (2000, 4, 4)


# -- flags ----------------------------------------------------------------------------


def test_big_cube_and_dropped_frames_flags(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "big.fits", (1000, 1104, 2228), mtime=T0)
    make_cube(tmp_path / "drop.fits", (10, 4, 4), mtime=T0 + 1, cards={"LOGDROP": 2, "LOGDRPIN": 5})
    make_cube(tmp_path / "ok.fits", (10, 4, 4), mtime=T0 + 2, cards={"LOGDROP": 0})
    (folder,) = Watcher([str(tmp_path)], n=3).scan()
    flags = {f.name: f.flags for f in folder.files}
    assert flags == {
        "ok.fits": frozenset(),
        "drop.fits": {Flag.DROPPED},
        "big.fits": {Flag.BIG},
    }
    assert folder.files[1].dropped == 7
    small_limit = Watcher([str(tmp_path)], n=3, big_cube_nbytes=100).scan()[0]
    assert all(Flag.BIG in f.flags for f in small_limit.files)


def _two_cameras(tmp_path: Path, make_cube, shape2, type2="DARK"):
    make_cube(tmp_path / "vcam1" / "a.fits", (250, 1104, 2228), mtime=T0)
    make_cube(tmp_path / "vcam2" / "a.fits", shape2, data_type=type2, mtime=T0)
    return Watcher([str(tmp_path / "vcam*")], clock=Clock(T0 + 1)).scan()


def test_cameras_with_crops_a_few_pixels_apart_agree(tmp_path: Path, make_cube) -> None:
    folders = _two_cameras(tmp_path, make_cube, (248, 1104, 2232))
    assert all(not f.files[0].flags for f in folders)


def test_shape_mismatch_between_cameras(tmp_path: Path, make_cube) -> None:
    folders = _two_cameras(tmp_path, make_cube, (2000, 536, 536))
    assert [f.files[0].flags for f in folders] == [{Flag.SHAPE_MISMATCH}] * 2


def test_data_type_mismatch_between_cameras(tmp_path: Path, make_cube) -> None:
    folders = _two_cameras(tmp_path, make_cube, (250, 1104, 2232), type2="OBJECT")
    assert [f.files[0].flags for f in folders] == [{Flag.TYPE_MISMATCH}] * 2


def test_mismatch_flags_only_the_odd_camera_out(tmp_path: Path, make_cube) -> None:
    for cam, dtype in (("vcam1", "DARK"), ("vcam2", "DARK"), ("vcam3", "FLAT")):
        make_cube(tmp_path / cam / "old.fits", (5, 536, 536), data_type="FLAT", mtime=T0 - 5)
        make_cube(tmp_path / cam / "new.fits", (5, 536, 536), data_type=dtype, mtime=T0)
    folders = Watcher([str(tmp_path / "vcam*")], clock=Clock(T0)).scan()
    assert [f.files[0].flags for f in folders] == [set(), set(), {Flag.TYPE_MISMATCH}]
    assert all(not f.files[1].flags for f in folders)  # only the newest cube is compared


def test_mismatch_skips_an_unreadable_newest_file(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "vcam1" / "a.fits", (250, 1104, 2228), mtime=T0)
    make_cube(tmp_path / "vcam2" / "a.fits", (250, 1104, 2232), data_type="OBJECT", mtime=T0)
    (tmp_path / "vcam2" / "b.fits").write_bytes(b"broken")
    os.utime(tmp_path / "vcam2" / "b.fits", (T0 + 1, T0 + 1))
    vcam1, vcam2 = Watcher([str(tmp_path / "vcam*")], clock=Clock(T0 + 2)).scan()
    assert vcam1.files[0].flags == {Flag.TYPE_MISMATCH}
    assert [f.flags for f in vcam2.files] == [frozenset(), {Flag.TYPE_MISMATCH}]


def test_stalled_folder_while_another_advances(tmp_path: Path, make_cube) -> None:
    for i in range(6):  # vcam1 writes a cube every 20 s, the last one just now
        make_cube(tmp_path / "vcam1" / f"f{i}.fits", (5, 4, 4), mtime=T0 + 20 * i)
    for i in range(3):  # vcam2 had the same cadence but stopped after 40 s
        make_cube(tmp_path / "vcam2" / f"f{i}.fits", (5, 4, 4), mtime=T0 + 20 * i)
    clock = Clock(T0 + 120)
    watcher = Watcher([str(tmp_path / "vcam*")], clock=clock)
    vcam1, vcam2 = watcher.scan()
    assert vcam1.flags == frozenset()
    assert vcam2.flags == {Flag.STALLED}
    assert vcam2.idle == pytest.approx(80)
    assert vcam2.expected_interval == pytest.approx(20)
    # both silent (end of the night): nobody advances, nobody is flagged
    clock.now = T0 + 1000
    assert all(not f.flags for f in watcher.scan())
    # a silence shorter than stall_min is not a stall
    clock.now = T0 + 120
    relaxed = Watcher([str(tmp_path / "vcam*")], clock=clock, stall_min=120.0)
    assert all(not f.flags for f in relaxed.scan())


def test_single_file_folder_uses_the_other_folders_cadence(tmp_path: Path, make_cube) -> None:
    for i in range(4):
        make_cube(tmp_path / "vcam1" / f"f{i}.fits", (5, 4, 4), mtime=T0 + 10 * i)
    make_cube(tmp_path / "vcam2" / "f0.fits", (5, 4, 4), mtime=T0)
    _, vcam2 = Watcher([str(tmp_path / "vcam*")], clock=Clock(T0 + 35)).scan()
    assert vcam2.flags == {Flag.STALLED}
    assert vcam2.expected_interval == pytest.approx(10)
    alone = Watcher([str(tmp_path / "vcam2")], siblings=False, clock=Clock(T0 + 1e5)).scan()
    assert not alone[0].flags  # one folder: nothing to compare with


# -- values, JSON, loop, bad input ----------------------------------------------------


def test_values_are_frozen_and_json_ready(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "vcam1" / "a.fits", (3, 4, 5), cards={"LOGDRPIN": 1}, mtime=T0)
    folders = Watcher([str(tmp_path / "vcam*"), str(tmp_path / "later*")]).scan()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        folders[0].n_files = 3  # type: ignore[misc]
    doc = json.loads(json.dumps(snapshot_dict(folders, time_iso="2024-06-13T00:11:20.347365")))
    assert doc["time"] == "2024-06-13T00:11:20.347365"
    first = doc["folders"][0]
    assert first["path"] == str(tmp_path / "vcam1")
    assert first["n_files"] == 1
    assert first["files"][0]["shape"] == [3, 4, 5]
    assert first["files"][0]["flags"] == ["dropped"]
    assert first["files"][0]["mtime"] == pytest.approx(T0)
    assert doc["folders"][1]["exists"] is False


def test_file_summary_defaults() -> None:
    summary = FileSummary(name="a.fits", path=Path("/x/a.fits"))
    assert summary.to_dict()["shape"] == []
    assert summary.flags == frozenset()


def test_watch_yields_until_stopped(tmp_path: Path, make_cube) -> None:
    watcher = Watcher([str(tmp_path)])
    stop = threading.Event()
    seen: list[int] = []
    for folders in watcher.watch(stop=stop, interval=0.01):
        seen.append(folders[0].n_files)
        if len(seen) == 2:
            make_cube(tmp_path / "new.fits", (1, 2, 3))
        if len(seen) == 4:
            stop.set()
    assert seen == [0, 0, 1, 1]


def test_watch_stops_from_another_thread_while_waiting(tmp_path: Path) -> None:
    watcher = Watcher([str(tmp_path)])
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    start = time.monotonic()
    results = list(watcher.watch(stop=stop, interval=30.0))
    timer.join()
    assert len(results) == 1
    assert time.monotonic() - start < 10  # did not wait the full interval


def test_watch_with_a_set_stop_yields_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    assert list(Watcher([str(tmp_path)]).watch(stop=stop)) == []


@pytest.mark.parametrize(
    ("patterns", "kwargs", "match"),
    [
        ([], {}, "no pattern given"),
        ([""], {}, "empty pattern"),
        (["  "], {}, "empty pattern"),
        ([3], {}, "not a path or glob"),
        (42, {}, "must be a folder, a glob"),
        (["x"], {"n": -1}, "'n' must be an integer >= 0"),
        (["x"], {"n": 2.5}, "'n' must be an integer"),
        (["x"], {"n": True}, "'n' must be an integer"),
        (["x"], {"stall_factor": 0}, "'stall_factor' must be a number > 0"),
        (["x"], {"stall_min": float("inf")}, "must be finite"),
        (["x"], {"shape_tolerance": "a"}, "'shape_tolerance' must be a number"),
        (["x"], {"big_cube_nbytes": 0}, "'big_cube_nbytes' must be an integer >= 1"),
    ],
)
def test_bad_arguments(patterns, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        Watcher(patterns, **kwargs)


def test_a_file_is_not_a_folder(tmp_path: Path, make_cube) -> None:
    path = make_cube(tmp_path / "a.fits", (1, 2, 3))
    with pytest.raises(ConfigError, match="is a file, not a folder; watch the folder"):
        Watcher([str(path)])


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf")])
def test_bad_interval(tmp_path: Path, interval: float) -> None:
    with pytest.raises(ConfigError, match="'interval'"):
        next(Watcher([str(tmp_path)]).watch(interval=interval))


def test_repr_and_properties(tmp_path: Path) -> None:
    watcher = Watcher(str(tmp_path), n=3)
    assert watcher.patterns == (str(tmp_path),)
    assert watcher.n == 3
    assert repr(watcher).startswith("vampires.Watcher([")
    import vampires

    assert vampires.Watcher is Watcher


def test_cubes_written_by_our_logger(tmp_path: Path) -> None:
    writer_mod = pytest.importorskip("vampires.fitslog.writer")
    from vampires.fitslog.sidecar import FrameTimes
    from vampires.kernels import fits_format

    frames = np.random.default_rng(0).integers(0, 65536, (6, 24, 20), dtype=np.uint16)
    fmt = fits_format(frames.dtype)
    cube = (frames.astype(np.int32) - 32768).astype(fmt.disk)  # uint16 -> BZERO'd int16
    n = len(frames)
    times = FrameTimes(
        cnt0=np.arange(n, dtype=np.int64),
        cnt1=np.zeros(n, np.int64),
        logger_time=T0 + 0.01 * np.arange(n) + 1e-4,
        acquisition_time=T0 + 0.01 * np.arange(n),
    )
    job = writer_mod.CubeJob(
        stream="vcam1",
        folder=tmp_path / "20240611" / "vcam1",
        cube=cube,
        nframes=n,
        fmt=fmt,
        times=times,
        stream_cards=(("DATA-TYP", "DARK", "Subaru data type"),),
        dropped_before=2,
        dropped_inside=3,
    )
    writer = writer_mod.CubeWriter(header_provider=lambda: {"OBSERVER": "scexao"}, fsync=False)
    written = writer.write(job)
    assert written.ok
    assert written.path is not None
    (folder,) = Watcher([str(tmp_path / "20240611" / "vcam*")]).scan()
    assert folder.n_files == 1  # the .txt sidecar is not counted
    (file,) = folder.files
    assert file.name == written.path.name
    assert file.shape == (6, 24, 20)
    assert (file.data_type, file.observer) == ("DARK", "scexao")
    assert file.dropped == 5
    assert file.flags == {Flag.DROPPED}
    assert file.error is None
    assert file.nbytes == written.nbytes
    with fits.open(written.path) as hdul:  # astropy agrees
        assert hdul[0].data.shape == file.shape


def test_listing_error_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vcam1").mkdir()
    (tmp_path / "vcam2").mkdir()
    real_scandir = os.scandir

    def scandir(path):  # root ignores permissions: inject the error the operator would see
        if Path(path).name == "vcam2":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        vcam1, vcam2 = Watcher([str(tmp_path / "vcam*")]).scan()
    assert vcam1.error is None
    assert vcam2.exists
    assert vcam2.error == "cannot list: Permission denied"


def test_a_cube_being_written_is_the_newest_line(tmp_path: Path, shm_dir: Path) -> None:
    """A live logger's .fits.tmp: newest line, frames on disk so far, a 'writing' mark."""
    pytest.importorskip("vampires.fitslog.logger")
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.stream import Stream
    from vampires.watch.tui import file_line

    shape = (24, 20)
    folder_path = tmp_path / "vcam1"
    with Stream.create("vcam1", shape, "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.01, "EXTTRIG": False, "DATA-TYP": "OBJECT"})
        policy = CubePolicy(frames_per_cube=5, flush_interval=0.02)
        with Logger("vcam1", policy, dirname=folder_path) as log:
            log.start()

            def publish(n: int) -> None:
                for _ in range(n):
                    before = log.status().frames
                    stream.write(np.full(shape, stream.cnt0 + 1, np.uint16))
                    deadline = time.monotonic() + 10
                    while log.status().frames == before and time.monotonic() < deadline:
                        time.sleep(0.002)

            publish(7)  # one cube done, 2 frames of the next on disk within the flush interval
            deadline = time.monotonic() + 10
            while log.status().on_disk_frames < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            (folder,) = Watcher([str(folder_path)], n=2).scan()
            writing, done = folder.files
            assert writing.writing
            assert writing.name.endswith(".fits.tmp")
            assert writing.shape == (2, 24, 20)
            assert writing.error is None
            assert Flag.WRITING in writing.flags
            assert (done.shape, done.writing) == ((5, 24, 20), False)
            assert folder.n_files == 1
            assert "writing: 2 frames so far" in file_line(writing).plain
            assert json.loads(json.dumps(writing.to_dict()))["writing"] is True
            log.pause()
            assert log.wait_idle(30)
    (folder,) = Watcher([str(folder_path)], n=5).scan()
    assert [f.shape[0] for f in folder.files] == [2, 5]
    assert not any(f.writing for f in folder.files)


def test_a_cube_file_that_just_appeared(tmp_path: Path, make_cube) -> None:
    from vampires.watch.tui import file_line

    d = tmp_path / "vcam1"
    make_cube(d / "vcam1_00:00:01.000000000.fits", (2, 3, 4), mtime=T0)
    (d / "vcam1_00:00:02.000000000.fits.tmp").write_bytes(b"")
    (folder,) = Watcher([str(d)], n=1).scan()
    (file,) = folder.files  # n=1: the cube being written is the newest line
    assert file.writing
    assert file.shape == ()
    assert file.error is None
    assert folder.n_files == 1
    assert "writing, no frame on disk yet" in file_line(file).plain


def test_tonight_pattern_is_the_ut_night_under_the_archive_root(tmp_path):
    import datetime as dt

    from vampires.config import Config
    from vampires.watch import tonight_pattern

    config = attrs.evolve(Config.load(), archive_root=tmp_path)
    # 23:30 in Hawaii (UTC-10) is already the next UT day
    late = dt.datetime(2024, 6, 10, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-10)))
    assert tonight_pattern(config=config, now=late) == str(tmp_path / "20240611" / "vcam*")
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert tonight_pattern(config=config) == str(tmp_path / today / "vcam*")
