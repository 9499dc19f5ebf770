"""Stream: C fixtures, create/open/write/read, keywords, readers, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from vampires.errors import (
    KeywordError,
    StreamClosedError,
    StreamError,
    StreamExistsError,
    StreamLayoutError,
    StreamNotFoundError,
    StreamTimeout,
    StreamVersionError,
    TornFrameError,
)
from vampires.stream import Frame, Stream, list_streams
from vampires.stream.layout import KEYWORD_DTYPE, METADATA_DTYPE

FIXTURES = ("u16_2d", "u16_3d", "f32_2d")


def bytesum(data: np.ndarray) -> int:
    raw = np.frombuffer(data.tobytes(), dtype=np.uint8).astype(np.int64)
    return int((raw * (np.arange(raw.size) % 251 + 1)).sum())


def expected_pixels(meta: dict) -> np.ndarray:
    shape = tuple(s for s in reversed(meta["size"]) if s)
    i = np.arange(meta["nelement"], dtype=np.int64)
    if meta["datatype"] == 3:
        return ((i * 7 + 3) % 65536).astype(np.uint16).reshape(shape)
    return (i * 0.5 - 3).astype(np.float32).reshape(shape)


@pytest.fixture
def isio_dir(isio_fixtures: Path, shm_dir: Path) -> Path:
    for name in FIXTURES:
        shutil.copy(isio_fixtures / f"{name}.im.shm", shm_dir / f"{name}.im.shm")
    return isio_fixtures


# ---------------------------------------------------------------- C fixtures


@pytest.mark.parametrize("name", FIXTURES)
def test_open_c_fixture(isio_dir: Path, shm_dir: Path, name: str):
    meta = json.loads((isio_dir / f"{name}.json").read_text())
    before = hashlib.sha256((shm_dir / f"{name}.im.shm").read_bytes()).hexdigest()
    with Stream.open(name) as s:
        assert s.shape == tuple(x for x in reversed(meta["size"]) if x)
        assert s.dtype == {3: np.uint16, 9: np.float32}[meta["datatype"]]
        assert s.cnt0 == meta["cnt0"] == 1
        assert s.cnt1 == meta["cnt1"]
        assert s.nsemaphores == meta["NBsem"] == 10
        assert s.nkeywords == meta["NBkw"] == 8
        assert s.circular_buffer == meta["CBsize"]
        data = s.read()
        assert bytesum(data) == meta["bytesum"]
        np.testing.assert_array_equal(data, expected_pixels(meta))
        cards = s.keywords.cards()
        assert [(n, c) for n, _, c in cards] == [(k["name"], k["comment"]) for k in meta["kw"]]
        assert s.keywords.types() == {k["name"]: k["type"] for k in meta["kw"]}
        for k in meta["kw"]:
            assert s.keywords[k["name"]] == k["value"]
            assert type(s.keywords[k["name"]]) is {"L": int, "D": float, "S": str}[k["type"]]
        md = s.metadata()
        assert md["semvalues"] == [1] * 10  # one UpdateIm posted every semaphore once
        assert md["semReadPID"] == [-1] * 10
        assert md["write_time"] if "write_time" in md else md["writetime"] > 1.7e9
    after = hashlib.sha256((shm_dir / f"{name}.im.shm").read_bytes()).hexdigest()
    assert before == after  # opening and reading modifies nothing


@pytest.mark.parametrize("name", FIXTURES)
def test_created_file_has_c_layout(isio_dir: Path, shm_dir: Path, name: str):
    meta = json.loads((isio_dir / f"{name}.json").read_text())
    c_bytes = (isio_dir / f"{name}.im.shm").read_bytes()
    shape = tuple(x for x in reversed(meta["size"]) if x)
    dtype = {3: np.uint16, 9: np.float32}[meta["datatype"]]
    with Stream.create("ours", shape, dtype, nkeywords=8) as s:
        s.write(expected_pixels(meta))
        ours = s.path.read_bytes()
    assert len(ours) == len(c_bytes)
    c_md = np.frombuffer(c_bytes[:384], METADATA_DTYPE)[0]
    o_md = np.frombuffer(ours[:384], METADATA_DTYPE)[0]
    for field in ("version", "naxis", "size", "nelement", "datatype", "imagetype", "shared",
                  "location", "status", "flag", "logflag", "sem", "NBproctrace", "cnt0",
                  "cnt1", "cnt2", "write", "NBkw", "CBsize", "CBindex", "CBcycle",
                  "imdatamemsize"):  # fmt: skip
        assert np.array_equal(c_md[field], o_md[field]), field
    # padding bytes between fields stay zero, as in the C file
    for lo, hi in ((113, 116), (137, 144), (225, 232), (242, 248), (257, 258), (262, 264)):
        assert ours[lo:hi] == c_bytes[lo:hi] == bytes(hi - lo)
    # same pixel bytes, and every byte after the keywords equal except semaphore
    # internals, PIDs and times
    lay = s.layout
    assert ours[lay.data : lay.keywords] == c_bytes[lay.data : lay.keywords]
    assert ours[lay.proctrace :] == c_bytes[lay.proctrace :]
    empty_kw = np.frombuffer(ours[lay.keywords : lay.semaphores], KEYWORD_DTYPE)
    assert set(empty_kw["type"]) == {b"N"}


# ---------------------------------------------------------------- create / open / write


def test_roundtrip_write_read_keywords():
    frame = np.arange(1096 * 64, dtype=np.uint16).reshape(1096, 64)
    with Stream.create("rt", (1096, 64), np.uint16) as w:
        assert (w.cnt0, w.cnt1, w.nkeywords, w.nsemaphores) == (0, 0, 50, 10)
        assert w.keywords.to_dict() == {}
        assert w.write(frame, keywords={"EXPTIME": (1e-3, "[s] Exposure time"), "N": 7}) == 1
        with Stream.open("rt") as r:
            assert r.shape == (1096, 64)
            assert r.dtype == np.uint16
            assert r.cnt0 == 1
            assert r.inode == w.inode == w.path.stat().st_ino
            np.testing.assert_array_equal(r.read(), frame)
            assert r.keywords["EXPTIME"] == 1e-3
            assert r.keywords.comment("EXPTIME") == "[s] Exposure time"
            assert r.keywords.to_dict() == {"EXPTIME": 1e-3, "N": 7}
        w.destroy()
    assert not Stream.exists("rt")


def test_shape_axis_order_matches_milk_size():
    with Stream.create("ax", (3, 5, 7), np.int16) as s:
        md = s.metadata()
        assert md["naxis"] == 3
        assert md["size"] == [7, 5, 3]  # size[0] = width = fastest axis
        assert md["nelement"] == 105
        assert md["imdatamemsize"] == 210
        assert md["datatype"] == 4
    with Stream.create("ax1", 9, np.uint8) as s:
        assert s.shape == (9,)
        assert s.metadata()["size"] == [9, 0, 0]


@pytest.mark.parametrize(
    "dtype",
    [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32,
     np.float64],
)  # fmt: skip
def test_every_writable_dtype(dtype):
    frame = (np.arange(12) * 3).astype(dtype).reshape(3, 4)
    with Stream.create("dt", (3, 4), dtype) as s:
        s.write(frame)
        got = s.read()
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, frame)


def test_write_times_and_acquisition_time():
    with Stream.create("tm", (2, 2), np.uint16) as s:
        t0 = time.time()
        s.write(np.zeros((2, 2), np.uint16))
        t1 = time.time()
        assert t0 - 0.01 <= s.write_time <= t1 + 0.01  # UTC after TAI correction
        assert s.acquisition_time == s.write_time
        s.write(np.zeros((2, 2), np.uint16), acquisition_time=1.7e9 + 0.25)
        assert s.acquisition_time == pytest.approx(1.7e9 + 0.25, abs=1e-6)


def test_write_with_is_zero_copy():
    with Stream.create("ww", (4, 4), np.uint16) as s:

        def fill(view: np.ndarray) -> None:
            assert view.flags.writeable
            view[:] = 5

        assert s.write_with(fill) == 1
        assert (s.read() == 5).all()

        def broken(view: np.ndarray) -> None:
            msg = "camera lost"
            raise RuntimeError(msg)

        with pytest.raises(RuntimeError):
            s.write_with(broken)
        assert s.cnt0 == 1
        # no circular buffer to restore the last frame from: the flag stays up so
        # no reader takes a possibly half-written array for a whole frame ...
        assert s.metadata()["write"] == 1
        # ... until the next good frame
        s.write_with(fill)
        assert s.metadata()["write"] == 0
        assert s.cnt0 == 2


def test_rolling_buffer_cnt1():
    with Stream.create("roll", (3, 2, 2), np.uint16) as s:
        for k in range(5):
            s.write(np.full((2, 2), k, np.uint16))
            assert s.cnt1 == k % 3
        np.testing.assert_array_equal(s.read()[:, 0, 0], [3, 4, 2])
        s.write(np.full((3, 2, 2), 9, np.uint16))
        assert s.cnt0 == 6
        assert s.cnt1 == 1  # whole-cube write keeps cnt1


def test_circular_buffer_slots():
    with Stream.create("cb", (2, 2), np.uint16, circular_buffer=3) as s:
        for k in range(4):
            s.write(np.full((2, 2), k + 1, np.uint16))
        md = s.metadata()
        assert md["CBsize"] == 3
        assert md["CBindex"] == 1  # slots 1, 2, 0, 1 as the C library
        assert md["CBcycle"] == 1
        assert s.path.stat().st_size == s.layout.total


def test_read_copy_false_reuses_buffer_and_out():
    with Stream.create("rb", (2, 3), np.float32) as s:
        s.write(np.ones((2, 3), np.float32))
        a = s.read(copy=False)
        b = s.read(copy=False)
        assert a is b
        out = np.empty((2, 3), np.float32)
        assert s.read(out=out) is out
        with pytest.raises(StreamError, match="out must be"):
            s.read(out=np.empty((3, 2), np.float32))


def test_view_is_read_only_and_survives_close():
    s = Stream.create("vw", (2, 2), np.uint16)
    s.write(np.full((2, 2), 3, np.uint16))
    v = s.view()
    assert not v.flags.writeable
    s.close()
    assert (v == 3).all()  # mapping kept alive by the view
    s.close()  # idempotent
    with pytest.raises(StreamClosedError):
        s.read()
    with pytest.raises(StreamClosedError):
        _ = s.cnt0
    with pytest.raises(StreamClosedError):
        s.keywords["X"] = 1
    del v


def test_exist_ok_reuses_or_recreates():
    a = Stream.create("ex", (4, 4), np.uint16)
    a.write(np.ones((4, 4), np.uint16))
    with pytest.raises(StreamExistsError):
        Stream.create("ex", (4, 4), np.uint16)
    b = Stream.create("ex", (4, 4), np.uint16, exist_ok=True)
    assert b.inode == a.inode
    assert b.cnt0 == 1
    assert not a.is_stale()
    c = Stream.create("ex", (8, 4), np.uint16, exist_ok=True)
    assert c.inode != a.inode
    assert c.cnt0 == 0
    assert a.is_stale()
    assert b.is_stale()
    assert not c.is_stale()
    a.destroy()  # other inode now: leaves c's file alone
    assert Stream.exists("ex")
    for s in (b, c):
        s.close()
    c.destroy()
    assert not Stream.exists("ex")
    assert c.is_stale()


def test_list_streams(shm_dir: Path):
    assert list_streams() == []
    with Stream.create("b", 2, np.uint8), Stream.create("a", 2, np.uint8):
        (shm_dir / "notes.txt").write_text("x")
        assert list_streams() == ["a", "b"]
        assert list_streams(shm_dir=shm_dir) == ["a", "b"]


def test_shm_dir_argument(tmp_path: Path):
    with Stream.create("here", (2, 2), np.uint8, shm_dir=tmp_path) as s:
        assert s.path == tmp_path / "here.im.shm"
        assert Stream.exists("here", shm_dir=tmp_path)
        assert not Stream.exists("here")
        with Stream.open("here", shm_dir=tmp_path) as r:
            assert r.shape == (2, 2)


# ---------------------------------------------------------------- keywords


def test_keyword_types_and_bool():
    with Stream.create("kw", (2, 2), np.uint8, nkeywords=6) as s:
        kw = s.keywords
        kw["I"] = 5
        kw["F"] = (2.5, "a float")
        kw["S"] = "HELLO"
        kw["T"] = True
        kw["FALSE"] = np.False_
        kw.set("NP", np.int64(-3), comment="numpy int")
        assert kw.types() == {"I": "L", "F": "D", "S": "S", "T": "S", "FALSE": "S", "NP": "L"}
        assert kw.to_dict() == {"I": 5, "F": 2.5, "S": "HELLO", "T": True, "FALSE": False,
                                "NP": -3}  # fmt: skip
        assert kw["T"] is True
        raw = s.view()  # bool is stored as the C string
        del raw
        entry = s._views().kw[3]
        assert bytes(entry["valstr"]).rstrip(b"\0") == b"#TRUE#"
        assert len(kw) == 6
        assert "F" in kw
        assert "Z" not in kw
        assert list(kw) == ["I", "F", "S", "T", "FALSE", "NP"]
        assert kw.get("Z", 1) == 1
        assert kw.comment("F") == "a float"
        kw["F"] = 3.5  # plain value keeps the comment
        assert kw.comment("F") == "a float"
        kw.set("F", 4.5, comment="")
        assert kw.comment("F") == ""
        with pytest.raises(KeyError):
            kw["Z"]
        with pytest.raises(KeyError):
            kw.comment("Z")
        del kw["I"]
        assert "I" not in kw
        kw["NEW"] = 1  # reuses the freed slot
        assert len(kw) == 6


def test_keyword_version_changes_on_every_write():
    with Stream.create("kv", (2, 2), np.uint8) as s:
        v0 = s.keywords.version
        assert s.keywords.version == v0
        s.keywords["A"] = 1
        v1 = s.keywords.version
        assert v1 != v0
        s.keywords["A"] = 1  # same value: the write counter still moves
        assert s.keywords.version != v1


@pytest.mark.parametrize(
    ("name", "value", "comment", "match"),
    [
        ("", 1, "", "non-empty"),
        ("A" * 16, 1, "", "limit is 15"),
        ("HAS SPACE", 1, "", "without spaces"),
        ("NONASCII\u00e9", 1, "", "ASCII"),
        ("OK", "x" * 16, "", "limit is 15"),
        ("OK", 1, "c" * 80, "limit is 79"),
        ("OK", None, "", "must be int, float, str or bool"),
        ("OK", b"bytes", "", "must be int, float, str or bool"),
        ("OK", [1], "", "must be int, float, str or bool"),
        ("OK", 2**63, "", "int64"),
        ("OK", 1, 5, "must be a str"),
        (5, 1, "", "non-empty str"),
    ],
)
def test_bad_keywords_write_nothing(name, value, comment, match):
    with Stream.create("bk", (2, 2), np.uint8) as s:
        s.keywords["KEEP"] = 1
        before = s.keywords.version
        with pytest.raises(KeywordError, match=match):
            s.keywords.set(name, value, comment)
        with pytest.raises(KeywordError, match=match):
            s.keywords.update({"GOOD": 2, name: (value, comment)})
        with pytest.raises(KeywordError, match=match):
            s.write(np.zeros((2, 2), np.uint8), keywords={"GOOD": 2, name: (value, comment)})
        assert s.cnt0 == 0
        assert s.keywords.version == before
        assert s.keywords.to_dict() == {"KEEP": 1}


def test_full_keyword_table_raises_and_writes_nothing():
    with Stream.create("kf", (2, 2), np.uint8, nkeywords=2) as s:
        s.keywords["A"] = 1
        with pytest.raises(KeywordError, match="full"):
            s.keywords.update({"B": 2, "C": 3})
        assert s.keywords.to_dict() == {"A": 1}
        s.keywords.update({"A": 5, "B": 2})  # updates do not need a new slot
        assert s.keywords.to_dict() == {"A": 5, "B": 2}
        with pytest.raises(KeywordError, match="full"):
            s.keywords["C"] = 1
    with Stream.create("k0", (2, 2), np.uint8, nkeywords=0) as s:
        with pytest.raises(KeywordError, match="full"):
            s.keywords["A"] = 1
        assert len(s.keywords) == 0


def test_bad_keyword_shapes():
    with Stream.create("ks", (2, 2), np.uint8) as s:
        with pytest.raises(KeywordError):
            s.keywords["A"] = (1, "c", "extra")
        with pytest.raises(KeywordError):
            s.keywords.update([("A", 1)])  # type: ignore[arg-type]
        with pytest.raises(KeywordError):
            s.write(np.zeros((2, 2), np.uint8), keywords=[("A", 1)])  # type: ignore[arg-type]


# ---------------------------------------------------------------- readers


def test_reader_next_wait_missed_and_timeout():
    with Stream.create("rd", (2, 2), np.uint16) as s, s.reader() as r:
        with pytest.raises(StreamTimeout):
            r.next(0.01)
        with pytest.raises(StreamTimeout):
            r.wait(0.0)
        s.write(np.full((2, 2), 1, np.uint16))
        assert r.wait(1.0) == 1
        f = r.next(1.0)
        assert isinstance(f, Frame)
        assert (f.cnt0, f.missed) == (1, 0)
        assert (f.data == 1).all()
        for k in (2, 3, 4):
            s.write(np.full((2, 2), k, np.uint16))
        f = r.next(1.0)
        assert (f.cnt0, f.missed, int(f.data[0, 0])) == (4, 2, 4)
        assert r.missed == 2
        out = np.empty((2, 2), np.uint16)
        s.write(np.full((2, 2), 5, np.uint16))
        f = r.next(1.0, out=out)
        assert f.data is out
        s.write(np.full((2, 2), 6, np.uint16))
        got = []
        info = r.next_into(lambda v: got.append(v.copy()), 1.0)
        assert (info.cnt0, info.missed) == (6, 0)
        assert int(got[0][0, 0]) == 6
        assert f.info.cnt0 == 5


def test_two_readers_in_one_process_get_distinct_indices():
    with Stream.create("two", (2, 2), np.uint8, nsemaphores=3) as s:
        r1, r2, r3 = s.reader(), s.reader(), s.reader()
        assert sorted({r1.index, r2.index, r3.index}) == [0, 1, 2]
        pids = s.metadata()["semReadPID"]
        assert pids == [os.getpid()] * 3
        with pytest.raises(StreamError, match="held by live readers"):
            s.reader()
        s.write(np.zeros((2, 2), np.uint8))
        assert r1.wait(1.0) == r2.wait(1.0) == r3.wait(1.0) == 1  # nobody steals a wake
        r2.close()
        r2.close()
        assert s.metadata()["semReadPID"][r2.index] == 0
        r4 = s.reader(index=r2.index)
        assert r4.index == r2.index
        with pytest.raises(StreamClosedError):
            r2.wait(0)
    with pytest.raises(StreamClosedError):  # closing the stream closes its readers
        r1.next(0)


def test_reader_claims_dead_pid_slots_and_flushes():
    with Stream.create("dead", (2, 2), np.uint8, nsemaphores=2) as s:
        s.write(np.zeros((2, 2), np.uint8))
        s.write(np.zeros((2, 2), np.uint8))  # both semaphores at 2 now
        pids = s._views().read_pid
        pids[:] = [os.getpid() + 10**6, 1]  # a dead PID and init (alive)
        with s.reader() as r:
            assert r.index == 0
            assert s.metadata()["semvalues"][0] == 0  # flushed on claim
            with pytest.raises(StreamTimeout):
                r.wait(0.0)


def test_semaphore_values_capped_at_maxval():
    with Stream.create("cap", (2, 2), np.uint8, nsemaphores=2) as s:
        for _ in range(15):
            s.write(np.zeros((2, 2), np.uint8))
        md = s.metadata()
        assert md["semvalues"] == [10, 10]
        assert md["semlog"] == 10
        assert md["semWritePID"] == [os.getpid()] * 2


def test_iter_frames():
    with Stream.create("it", (2, 2), np.uint8) as s:
        frames = s.iter_frames(timeout=0.01)
        with pytest.raises(StreamTimeout):
            next(frames)


def test_torn_copy_is_detected_never_returned():
    with Stream.create("torn", (2, 2), np.uint8) as s, s.reader() as r:
        s.write(np.zeros((2, 2), np.uint8))
        v = s._views()

        def tearing(view: np.ndarray) -> None:
            v.cnt0[0] += 1  # a writer published during the copy

        with pytest.raises(TornFrameError):
            r.next_into(tearing, 1.0)
        assert r.torn == 1
        v.write[0] = 1  # a writer died in the middle of a frame
        with pytest.raises(TornFrameError, match="write flag"):
            s.read()
        v.write[0] = 0
        assert s.read().shape == (2, 2)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "match"),
    [("", "empty"), ("a/b", "'/'"), ("..", "'..'"), ("a..b", "'..'"), ("x" * 80, "limit is 79"),
     ("sp ace", "ASCII"), (5, "must be a str"), ("nul\0", "NUL")],
)  # fmt: skip
def test_bad_names(name, match, shm_dir: Path):
    with pytest.raises(StreamError, match=match):
        Stream.create(name, (2, 2), np.uint8)
    with pytest.raises(StreamError, match=match):
        Stream.open(name)
    assert list(shm_dir.iterdir()) == []
    Stream.create("x" * 79, 2, np.uint8).destroy()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (0, 2)}, "shape"),
        ({"shape": (1, 2, 3, 4)}, "shape"),
        ({"shape": ()}, "shape"),
        ({"shape": (2.0, 2)}, "shape"),
        ({"shape": "22"}, "shape"),
        ({"dtype": np.complex64}, "not writable"),
        ({"dtype": np.float16}, "not writable"),
        ({"dtype": ">u2"}, "not writable"),
        ({"dtype": "nonsense"}, "invalid stream dtype"),
        ({"nkeywords": -1}, "nkeywords"),
        ({"nsemaphores": 0}, "nsemaphores"),
        ({"circular_buffer": 1.5}, "circular_buffer"),
    ],
)
def test_bad_create_arguments(kwargs, match, shm_dir: Path):
    args = {"shape": (2, 2), "dtype": np.uint16} | kwargs
    with pytest.raises(StreamError, match=match):
        Stream.create("bad", **args)
    assert list(shm_dir.iterdir()) == []


def test_missing_folder(tmp_path: Path):
    with pytest.raises(StreamError, match="does not exist"):
        Stream.create("x", 2, np.uint8, shm_dir=tmp_path / "nope")


def test_bad_writes_change_nothing():
    with Stream.create("bw", (2, 3), np.uint16) as s:
        s.write(np.ones((2, 3), np.uint16))
        for frame, match in [
            (np.ones((3, 2), np.uint16), "does not fit"),
            (np.ones((2, 3), np.float64), "cannot be written safely"),
            (np.ones((2, 3), np.int32), "cannot be written safely"),
        ]:
            with pytest.raises(StreamError, match=match):
                s.write(frame)
        for bad_time in (float("nan"), -1.0, "now", True):
            with pytest.raises(StreamError, match="acquisition_time"):
                s.write(np.ones((2, 3), np.uint16), acquisition_time=bad_time)
        assert s.cnt0 == 1
        assert s.metadata()["write"] == 0
        s.write(np.ones((2, 3), np.uint8))  # safe cast is fine
        assert s.cnt0 == 2


def test_open_missing():
    with pytest.raises(StreamNotFoundError, match="no stream 'nope'"):
        Stream.open("nope")
    assert not Stream.exists("nope")


def _corrupt(shm_dir: Path, isio_dir: Path, name: str, mutate) -> bytes:
    data = bytearray((isio_dir / "u16_2d.im.shm").read_bytes())
    data = mutate(data)
    (shm_dir / f"{name}.im.shm").write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda d: d[:4000], StreamLayoutError, "truncated"),
        (lambda d: d[:100], StreamLayoutError, "truncated"),
        (lambda d: bytearray(), StreamLayoutError, "truncated"),
        (lambda d: d + bytearray(8), StreamLayoutError, "longer"),
        (lambda d: bytearray(b"1.00") + d[4:], StreamVersionError, "'1.00'"),
        (lambda d: bytearray(32) + d[32:], StreamVersionError, "still creating it"),
        (lambda d: bytearray(b"SIMPLE  =") + d[9:], StreamVersionError, "not an ImageStreamIO"),
        (lambda d: d[:112] + bytearray([7]) + d[113:], StreamLayoutError, "naxis"),
        (lambda d: d[:136] + bytearray([99]) + d[137:], StreamLayoutError, "datatype"),
        (lambda d: d[:240] + bytearray([0]) + d[241:], StreamLayoutError, "GPU"),
        (lambda d: d[:128] + bytearray(8) + d[136:], StreamLayoutError, "nelement"),
    ],
)
def test_bad_files_refused_unchanged(isio_dir, shm_dir, mutate, error, match):
    before = _corrupt(shm_dir, isio_dir, "broken", mutate)
    with pytest.raises(error, match=match):
        Stream.open("broken")
    assert (shm_dir / "broken.im.shm").read_bytes() == before
    # exist_ok re-creates over a broken file
    with Stream.create("broken", (2, 2), np.uint8, exist_ok=True) as s:
        assert s.cnt0 == 0


def test_non_stream_text_file_and_directory(shm_dir: Path):
    (shm_dir / "notes.im.shm").write_text("hello " * 100)
    with pytest.raises(StreamVersionError):
        Stream.open("notes")
    (shm_dir / "dir.im.shm").mkdir()
    with pytest.raises(StreamError):
        Stream.open("dir")


def test_full_table_during_write_leaves_pixels_untouched():
    with Stream.create("kfw", (2, 2), np.uint8, nkeywords=1) as s:
        s.write(np.full((2, 2), 7, np.uint8), keywords={"A": 1})
        with pytest.raises(KeywordError, match="full"):
            s.write(np.zeros((2, 2), np.uint8), keywords={"B": 2})
        with pytest.raises(KeywordError, match="full"):
            s.write_with(lambda v: v.fill(0), keywords={"B": 2})
        assert (s.read() == 7).all()
        assert s.cnt0 == 1
        assert s.metadata()["write"] == 0


def test_write_with_explicit_counters():
    with Stream.create("ctr", (2, 2), np.uint16) as s, s.reader() as r:
        assert s.write_with(lambda v: v.fill(1), cnt0=1000, cnt1=3) == 1000
        f = r.next(1.0)
        assert (f.cnt0, f.cnt1, f.missed) == (1000, 3, 999)
        assert s.write_with(lambda v: v.fill(2)) == 1001
        for bad in (-1, 2**64, 1.5, True, "1"):
            with pytest.raises(StreamError, match="cnt0"):
                s.write_with(lambda v: v.fill(3), cnt0=bad)
        assert s.cnt0 == 1001
        assert (s.read() == 2).all()


@pytest.mark.parametrize(
    ("make_dtype", "code", "shape", "read_dtype"),
    [
        (np.uint8, 2, (6,), np.int8),
        (np.uint16, 13, (6,), np.float16),
        (np.uint64, 11, (6,), np.complex64),
        (np.float64, 12, (3,), np.complex128),  # 6 doubles -> 3 complex128
    ],
)
def test_every_c_datatype_is_readable(make_dtype, code, shape, read_dtype):
    with Stream.create("ty", (6,), make_dtype) as s:
        md = s._views().md
        md["datatype"] = code
        md["size"] = [shape[0], 0, 0]
        md["nelement"] = shape[0]
        raw = s.path
    with Stream.open("ty") as s:
        assert s.dtype == read_dtype
        assert s.shape == shape
        assert s.read().dtype == read_dtype
        with pytest.raises(StreamError, match="not supported"):
            s.write(np.zeros(shape, read_dtype))
        with pytest.raises(StreamError, match="not supported"):
            s.write_with(lambda v: None)
    assert raw.exists()


def test_keyword_names_with_garbage_after_the_nul():
    with Stream.create("gb", (2, 2), np.uint8, nkeywords=2) as s:
        s.keywords["LONGNAME12"] = 1
        entry = s._views().kw[0:1]
        entry["name"] = b"AB\0GNAME12"  # what strcpy("AB") over "LONGNAME12" leaves
        assert list(s.keywords) == ["AB"]
        assert s.keywords["AB"] == 1
        s.keywords["AB"] = 2
        assert s.keywords.to_dict() == {"AB": 2}
        assert dict(s.keywords) == {"AB": 2}
        assert s.keywords.items() == [("AB", 2)]
        assert s.keywords.values() == [2]


def test_concurrent_claims_from_threads_are_distinct():
    import threading

    with Stream.create("thr", (2, 2), np.uint8, nsemaphores=8) as s:
        barrier = threading.Barrier(8)
        readers = []
        lock = threading.Lock()

        def claim() -> None:
            barrier.wait(10)
            r = s.reader()
            with lock:
                readers.append(r)

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(r.index for r in readers) == list(range(8))


def test_exist_ok_over_a_directory_is_a_clear_error(shm_dir: Path):
    (shm_dir / "d.im.shm").mkdir()
    with pytest.raises(StreamError, match="cannot create stream 'd'"):
        Stream.create("d", (2, 2), np.uint8, exist_ok=True)
    assert [p.name for p in shm_dir.iterdir()] == ["d.im.shm"]


def test_write_accepts_python_lists_that_fit():
    with Stream.create("ls", (2, 2), np.uint16) as s:
        s.write([[1, 2], [3, 65535]])
        assert s.read().tolist() == [[1, 2], [3, 65535]]
        for bad in ([[1, 2], [3, 65536]], [[1, 2], [3, -1]], [[1.5, 2], [3, 4]], "xx"):
            with pytest.raises(StreamError):
                s.write(bad)
        assert s.cnt0 == 1


def test_racing_creators_one_wins():
    import threading

    barrier = threading.Barrier(6)
    results: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait(10)
        try:
            Stream.create("race", (64, 64), np.uint16).close()
            outcome = "created"
        except StreamExistsError:
            outcome = "exists"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["created"] + ["exists"] * 5
    with Stream.open("race") as s:
        assert s.shape == (64, 64)


def test_circular_buffer_gives_consistent_reads_while_the_writer_is_busy():
    with Stream.create("cbr", (2, 2), np.uint16, circular_buffer=3) as s, s.reader() as r:
        for k in (1, 2):
            s.write(np.full((2, 2), k, np.uint16), acquisition_time=1.7e9 + k)
        v = s._views()
        v.write[0] = 1  # the writer is in the middle of frame 3 ...
        v.data[0, 0] = 3  # ... and has overwritten part of the main buffer
        got = s.read()
        assert (got == 2).all()
        f = r.next(0.1)
        assert (f.cnt0, int(f.data[1, 1]), f.acquisition_time) == (2, 2, pytest.approx(1.7e9 + 2))
        v.write[0] = 0
        v.cbmd[v.cbindex[0]]["cnt0"] = 0  # a C writer does not fill CBFRAMEMD
        assert int(s.read()[0, 0]) == 3  # main buffer used then


@pytest.mark.parametrize("how", ["next", "wait", "stream_close"])
def test_closing_wakes_a_blocked_reader_thread(how: str):
    import threading

    s = Stream.create("cl", (2, 2), np.uint8)
    r = s.reader()
    errors: list[BaseException] = []

    def block() -> None:
        try:
            r.next(30.0) if how != "wait" else r.wait(30.0)
        except StreamError as exc:
            errors.append(exc)

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.05)  # let it block in sem_timedwait (a later close works the same)
    if how == "stream_close":
        s.close()
    else:
        r.close()
    t.join(5.0)
    assert not t.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], StreamClosedError)
    s.destroy()


def _milk_keywords(path: Path) -> list[tuple[str, object]]:
    """Read the keyword table from the file the way milk and pyMilk do: stop at 'N'."""
    with Stream.open(path.name.removesuffix(".im.shm"), shm_dir=path.parent) as s:
        offset, count = s.layout.keywords, s.layout.nkeywords
    table = np.fromfile(path, KEYWORD_DTYPE, count, offset=offset)
    out: list[tuple[str, object]] = []
    for entry in table:
        kind = bytes(entry["type"])
        if kind == b"N":
            break
        name = bytes(entry["name"]).split(b"\0")[0].decode()
        out.append((name, int(entry["numl"]) if kind == b"L" else None))
    return out


def test_deleting_a_keyword_leaves_no_hole_for_milk_readers(shm_dir: Path):
    # issue 13 item 9: a hole ('N', empty name) hid every keyword after it
    with Stream.create("kwdel", (2, 2), np.uint8, nkeywords=6) as s:
        s.keywords.update({"A": 1, "B": 2, "C": 3, "D": 4})
        del s.keywords["B"]
        assert _milk_keywords(s.path) == [("A", 1), ("C", 3), ("D", 4)]
        assert s.keywords.to_dict() == {"A": 1, "C": 3, "D": 4}
        del s.keywords["D"]  # the last one
        del s.keywords["A"]  # the first one
        assert _milk_keywords(s.path) == [("C", 3)]
        # a writer appending at the first 'N' (pyMilk) erases nothing
        s.keywords["E"] = 5
        assert _milk_keywords(s.path) == [("C", 3), ("E", 5)]
        assert s.keywords.comment("C") == ""
        del s.keywords["C"]
        del s.keywords["E"]
        assert _milk_keywords(s.path) == []
        assert len(s.keywords) == 0
        with pytest.raises(KeyError):
            del s.keywords["E"]


def _mapped_rss_kib(path: Path) -> int:
    """Resident KiB of this process's mapping of ``path`` (from /proc/self/smaps)."""
    rss, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                rss += int(line.split()[1])
    return rss


def test_open_maps_every_page_at_once(shm_dir: Path) -> None:
    """The first read of a just-attached stream takes no page fault per 4 KiB.

    Without it, the first pass over an MBI frame (1200 pages) is slow enough for a
    writer without a circular buffer to overwrite the first frames a logger reads.
    """
    with Stream.create("populate", (1096, 2236), np.uint16, shm_dir=shm_dir) as writer:
        writer.write(np.ones((1096, 2236), np.uint16))
        with Stream.open("populate", shm_dir=shm_dir) as reader:
            assert _mapped_rss_kib(reader.path) * 1024 >= 1096 * 2236 * 2
        writer.destroy()
