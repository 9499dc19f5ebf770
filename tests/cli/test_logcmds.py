"""Operator logging commands with real logger daemons on two synthetic streams.

The streams are written by a thread of the test (not the camera daemon), so
these tests depend only on Stream, Logger and the control plane.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import wait_for
from vampires.cli import logger as logger_cli
from vampires.cli import pauselog, preplog, startlog, stoplog
from vampires.control import ControlClient, daemon_alive, discover
from vampires.control.spawn import pid_alive
from vampires.stream import Stream

pytestmark = pytest.mark.integration

CAMS = ("vcam1", "vcam2")
SHAPE = (32, 48)


class Writer:
    """Writes frames into vcam1 and vcam2 at ~400 Hz from a thread."""

    def __init__(self) -> None:
        self.streams = [Stream.create(n, SHAPE, np.uint16, exist_ok=True) for n in CAMS]
        for s in self.streams:
            s.keywords["DATA-TYP"] = ("TEST", "Subaru data type")
            s.keywords["EXPTIME"] = (0.0025, "[s] Exposure time")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        frame = np.zeros(SHAPE, np.uint16)
        while not self.stop.is_set():
            frame.fill(i % 60000)
            now = time.time()
            for s in self.streams:
                s.write(frame, acquisition_time=now)
            i += 1
            self.stop.wait(0.0025)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)
        for s in self.streams:
            s.destroy()


@pytest.fixture
def writer(shm_dir: Path) -> Iterator[Writer]:
    w = Writer()
    yield w
    w.close()


def _logger_pids() -> list[int]:
    return [d.pid for d in discover("logger") if d.pid is not None]


@pytest.fixture
def cleanup(shm_dir: Path) -> Iterator[None]:
    """Kill every logger daemon of this test's shm folder, whatever happened."""
    yield
    for pid in _logger_pids():
        os.kill(pid, signal.SIGTERM)
    for lock in (shm_dir / "vampires").glob("logger-*.lock"):
        text = lock.read_text().strip() if lock.exists() else ""
        if text.isdigit() and pid_alive(int(text)):
            os.kill(int(text), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in _logger_pids()) and time.monotonic() < deadline:
        time.sleep(0.05)


def fits_frames(folder: Path) -> list[int]:
    from astropy.io import fits

    out = []
    for path in sorted(folder.glob("*.fits"), key=lambda p: p.stat().st_mtime):
        with fits.open(path) as hdul:
            out.append(int(hdul[0].header["NAXIS3"]))
    return out


def status(name: str) -> dict[str, object]:
    with ControlClient("logger", name, timeout=5.0) as client:
        return client.call("status")


def test_preplog_start_pause_stop(
    writer: Writer, cleanup: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "data"
    rc = preplog.main(["-n", "40", "-z", "-1", "-c", "-1", "-na", "-t", "dark", "-d", str(base)])
    out = capsys.readouterr().out
    assert rc == 0, out
    for cam in CAMS:
        assert f"{cam}: ok: logger started" in out
        assert "DATA-TYP DARK (stream keyword)" in out
        with Stream.open(cam) as s:
            assert s.keywords["DATA-TYP"] == "DARK"
    assert "start saving with vampires_startlog" in out
    folders = {cam: Path(str(status(cam)["logger"]["folder"])) for cam in CAMS}  # type: ignore[index]
    assert folders["vcam1"].parent.parent == base
    assert all(status(c)["cube_size"] == 40 for c in CAMS)

    # preplog again: the running loggers are reconfigured, not duplicated
    assert (
        preplog.main(["-n", "30", "-z", "-1", "-c", "-1", "-na", "-t", "DARK", "-d", str(base)])
        == 0
    )
    assert "reconfigured" in capsys.readouterr().out
    assert all(status(c)["cube_size"] == 30 for c in CAMS)

    assert startlog.main(["-z", "-1"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all("on ok, state saving (skew" in line for line in lines)
    print(out)  # noqa: T201 - the measured start skew, for the record
    wait_for(lambda: all(status(c)["logger"]["files"] >= 2 for c in CAMS), 20, "2 cubes")  # type: ignore[index]

    assert pauselog.main(["--wait"]) == 0
    out = capsys.readouterr().out
    assert "offc ok" in out
    wait_for(lambda: all(status(c)["state"] == "idle" for c in CAMS), 20, "idle after --wait")
    for cam in CAMS:
        frames = fits_frames(folders[cam])
        assert frames, cam
        assert all(n == 30 for n in frames), (cam, frames)  # --wait: every cube complete

    first_run = {c: len(fits_frames(folders[c])) for c in CAMS}
    assert startlog.main(["-z", "-1"]) == 0  # the frame counters restart with the run
    wait_for(lambda: all(status(c)["logger"]["frames"] >= 45 for c in CAMS), 20, "frames")  # type: ignore[index,operator]
    assert pauselog.main([]) == 0  # now: the cube in flight is truncated
    assert "off ok" in capsys.readouterr().out
    wait_for(lambda: all(status(c)["state"] == "idle" for c in CAMS), 20, "idle after pause")
    for cam in CAMS:
        # every frame of the second run is in a file: full cubes, then the cube in
        # flight truncated (how many frames it had at 'off' depends on the machine;
        # exactly a multiple of 30 leaves no cube in flight)
        logged = int(status(cam)["logger"]["frames"])  # type: ignore[index]
        frames = fits_frames(folders[cam])[first_run[cam] :]
        assert sum(frames) == logged, (cam, frames, logged)
        assert all(n == 30 for n in frames[:-1]), (cam, frames)
        assert frames[-1] == (logged % 30 or 30), (cam, frames, logged)

    assert stoplog.main(["--no-kill"]) == 0
    assert "off ok" in capsys.readouterr().out
    assert sorted(d.name for d in discover("logger")) == list(CAMS)

    pids = _logger_pids()
    assert stoplog.main([]) == 0  # --kill is the default
    assert capsys.readouterr().out.count("kill ok, state killed") == 2
    wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "daemons to exit")
    assert discover("logger") == []

    assert startlog.main(["-z", "-1"]) == 1
    err = capsys.readouterr().out
    assert "no logger for vcam1: run vampires_preplog" in err
    assert "no logger for vcam2: run vampires_preplog" in err


def test_startlog_with_cube_count_and_one_camera(
    writer: Writer, cleanup: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for cam in CAMS:
        assert logger_cli.main(["start", cam, "-n", "20", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vcam1: logger started" in out
    assert f"files go to {tmp_path}" in out
    assert startlog.main(["-c", "2", "-z", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("vcam2: on ok")
    assert "vcam1" not in out
    wait_for(
        lambda: status("vcam2")["state"] == "idle" and status("vcam2")["logger"]["files"] == 2,  # type: ignore[index]
        20,
        "vcam2 to stop by itself after 2 cubes",
    )
    assert status("vcam1")["logger"]["files"] == 0  # type: ignore[index]
    assert logger_cli.main(["ls"]) == 0
    table = capsys.readouterr().out
    assert "vcam1" in table
    assert "vcam2" in table
    assert "DISK FREE" in table
    assert logger_cli.main(["start", "vcam1", "-n", "20", "--root", str(tmp_path)]) == 1
    assert "already running" in capsys.readouterr().err
    assert logger_cli.main(["set", "vcam1", "vcam2", "--cube-size", "0"]) == 1
    assert ">= 1" in capsys.readouterr().out
    assert logger_cli.main(["stop", "vcam1", "vcam2"]) == 0


def test_one_of_two_died(
    writer: Writer, cleanup: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for cam in CAMS:
        assert logger_cli.main(["start", cam, "-n", "20", "--root", str(tmp_path)]) == 0
    capsys.readouterr()
    vcam2 = next(d.pid for d in discover("logger") if d.name == "vcam2")
    assert vcam2 is not None
    os.kill(vcam2, signal.SIGKILL)
    # a multi-threaded process shows as a zombie before its last thread closed its files
    wait_for(lambda: not daemon_alive("logger", "vcam2"), 5, "vcam2 daemon to die")
    assert startlog.main(["-z", "-1", "--reply-timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "vcam1: on ok, state saving" in out
    assert "vcam2: on FAILED (not-running): logger for vcam2 died: run vampires_preplog" in out
    assert pauselog.main([]) == 1
    capsys.readouterr()
    assert logger_cli.main(["ls"]) == 1  # the dead one is listed, not hidden
    table = capsys.readouterr().out
    assert "vcam2      DEAD       logger for vcam2 died: run vampires_preplog" in table
    assert stoplog.main(["-c", "1"]) == 0
    # preplog restarts the dead one over its stale socket
    assert (
        preplog.main(
            ["-n", "20", "-z", "-1", "-c", "2", "-na", "-t", "OBJECT", "-d", str(tmp_path)]
        )
        == 0
    )
    assert "vcam2: ok: logger started" in capsys.readouterr().out


def test_unwritable_folder_is_reported_and_logger_keeps_running(
    writer: Writer, cleanup: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    # a folder that can never be written is refused before a daemon starts ...
    assert logger_cli.main(["start", "vcam1", "-n", "10", "--dir", str(blocker / "x")]) == 1
    assert "cannot create the folder" in capsys.readouterr().err
    # ... one that goes bad after the start (disk unmounted, folder replaced) is
    # reported by the running logger, which keeps running
    data = tmp_path / "data"
    assert logger_cli.main(["start", "vcam1", "-n", "10", "--dir", str(data)]) == 0
    data.rmdir()
    data.write_text("a file where the data folder was")
    assert startlog.main(["-c", "1", "-z", "-1"]) == 0
    wait_for(lambda: bool(status("vcam1")["logger"]["error"]), 20, "the folder error")  # type: ignore[index]
    capsys.readouterr()
    assert logger_cli.main(["ls"]) == 0
    assert "ERROR:" in capsys.readouterr().out
    assert status("vcam1")["state"] in {"saving", "finishing"}  # still running
    assert stoplog.main(["-c", "1"]) == 0


def test_logger_over_tcp_with_curve(
    cleanup: None, shm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    assert logger_cli.main(["keys", str(keys)]) == 0
    assert "client.key_secret" in capsys.readouterr().out
    argv = ["start", "vcam1", "-n", "10", "--root", str(tmp_path), "--tcp", "tcp://127.0.0.1:*"]
    assert logger_cli.main(argv) == 1
    assert "CURVE" in capsys.readouterr().err
    assert logger_cli.main([*argv, "--curve-dir", str(keys)]) == 0
    out = capsys.readouterr().out
    endpoint = out.split("also on ")[1].split(" ")[0]
    with ControlClient("logger", "vcam1", endpoint=endpoint, curve_dir=keys) as client:
        assert client.call("get")["cube_size"] == 10
    assert stoplog.main(["-c", "1"]) == 0


@pytest.mark.parametrize("camera", ["3", "0", "-2", "../x", "a b"])
def test_bad_camera_is_refused(camera: str, capsys: pytest.CaptureFixture[str]) -> None:
    for main in (startlog.main, pauselog.main, stoplog.main, preplog.main):
        with pytest.raises(SystemExit) as info:
            main(["-c", camera])
        assert info.value.code == 2
        assert "camera must be 1, 2" in capsys.readouterr().err


def test_no_logger_running(shm_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for main, argv in [
        (startlog.main, ["-z", "-1"]),
        (pauselog.main, ["-w"]),
        (stoplog.main, []),
        (stoplog.main, ["--no-kill"]),
    ]:
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert "no logger for vcam1: run vampires_preplog" in out
        assert "no logger for vcam2: run vampires_preplog" in out
    assert logger_cli.main(["ls"]) == 0
    assert "no logger running" in capsys.readouterr().out


def test_preplog_interactive(
    writer: Writer,
    cleanup: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # frames: invalid then default (suggested); cubes 3; camera 1; no archive; type; folder
    answers = ["abc", "", "3", "1", "n", "flat", str(tmp_path / "eng")]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(answers) + "\n"))
    assert preplog.main([]) == 0
    captured = capsys.readouterr()
    out = captured.out
    suggested = round(1.2e9 / (SHAPE[0] * SHAPE[1] * 2))
    order = [
        f"Specify number of frames per cube (~1.2 GB cubes for the current crop: {suggested})",
        "Specify number of cubes (-1 for infinite) [-1]",
        "Specify camera, if -1 uses both [-1]",
        "Archive data to Gen2 (y/n) [n]",
        "Data type (ACQUISITION, BIAS",
        "Please enter save directory",
    ]
    positions = [out.index(p) for p in order]
    assert positions == sorted(positions)
    assert "invalid answer" in captured.err
    assert "vcam1: ok: logger started" in out
    assert "vcam2" not in out.split("Saving to")[1]
    st = status("vcam1")
    assert (st["cube_size"], st["cubes"]) == (suggested, 3)
    with Stream.open("vcam1") as s:
        assert s.keywords["DATA-TYP"] == "FLAT"
    with Stream.open("vcam2") as s:
        assert s.keywords["DATA-TYP"] == "TEST"


def test_preplog_archive_and_bad_input(
    shm_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VAMPIRES_ARCHIVE_ROOT", str(tmp_path / "ARCHIVED_DATA"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert preplog.main(["-z", "-1", "-c", "1", "-a", "-t", "OBJECT"]) == 1
    assert "no answer to 'Specify number of frames per cube'" in capsys.readouterr().err
    assert preplog.main(["-n", "10", "-z", "-1", "-c", "1", "-a", "-t", "NOPE"]) == 1
    assert "data type must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        preplog.main(["-n", "ten"])
    # no stream for vcam1 and no camera daemon: DATA-TYP cannot be set, reported per camera
    assert preplog.main(["-n", "10", "-z", "-1", "-c", "1", "-a", "-t", "OBJECT"]) == 1
    out = capsys.readouterr().out
    assert f"Saving to {tmp_path / 'ARCHIVED_DATA'}" in out
    assert "vcam1: FAILED" in out
    assert discover("logger") == []


COMMAND_PATHS = {
    "vampires.cli.startlog": "['-z', '-1']",
    "vampires.cli.pauselog": "['--wait']",
    "vampires.cli.stoplog": "['--no-kill']",
    "vampires.cli.preplog": "['-n', '5', '-z', '-1', '-c', '1', '-na', '-t', 'DARK', '-d', '/tmp']",
    "vampires.cli.logger": "['ls']",
    "vampires.cli.logctl": "['--interval', '0']",
}


def test_no_numba_or_astropy_on_command_paths(shm_dir: Path) -> None:
    code = "\n".join(
        [
            "import importlib, sys",
            *[f"importlib.import_module({m!r}).main({a})" for m, a in COMMAND_PATHS.items()],
            "bad = [m for m in ('numba', 'astropy') if m in sys.modules]",
            "assert not bad, bad",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


class _Terminal(io.StringIO):
    """stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _run_cmd(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_startlog_keeps_the_cube_count_prepared_by_preplog(
    writer: Writer,
    cleanup: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # issue 13 item 1: the operator's sequence, as processes, stdin not a terminal
    out_dir = tmp_path / "night"
    prep = _run_cmd(["vampires_preplog"], stdin=f"50\n2\n-1\nn\nDARK\n{out_dir}\n")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    assert status("vcam1")["cubes"] == 2
    start = _run_cmd(["vampires_startlog"])
    assert start.returncode == 0, start.stdout + start.stderr
    assert "vcam1: on ok" in start.stdout
    assert status("vcam1")["cubes"] == 2
    assert status("vcam2")["cubes"] == 2
    assert stoplog.main(["--no-kill"]) == 0
    # on a terminal, Enter keeps the prepared count; a typed answer wins
    monkeypatch.setattr(sys, "stdin", _Terminal("\n"))
    assert startlog.main(["-c", "1"]) == 0
    assert "Enter keeps the prepared count" in capsys.readouterr().out
    assert status("vcam1")["cubes"] == 2
    assert stoplog.main(["--no-kill", "-c", "1"]) == 0
    monkeypatch.setattr(sys, "stdin", _Terminal("5\n"))
    assert startlog.main(["-c", "1"]) == 0
    assert status("vcam1")["cubes"] == 5
    assert stoplog.main(["--no-kill", "-c", "1"]) == 0
    # an explicit -z wins, -1 included
    assert startlog.main(["-c", "1", "-z", "-1"]) == 0
    assert status("vcam1")["cubes"] == -1


def test_preplog_refuses_bad_options_before_saying_where_files_go(
    shm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in (["-n", "-5", "-t", "DARK"], ["-n", "5", "-t", "FOO"], ["-n", "5", "-z", "0"]):
        argv = [*bad, "-c", "1", "-na", "-d", str(tmp_path)]
        if "-z" not in bad:
            argv += ["-z", "-1"]
        assert preplog.main(argv) == 1
        captured = capsys.readouterr()
        assert captured.out == "", argv
        assert captured.err.startswith("vampires_preplog: "), argv
    # a camera that fails says what failed, not where its files would go
    assert (
        preplog.main(["-n", "5", "-z", "-1", "-c", "1", "-na", "-t", "DARK", "-d", str(tmp_path)])
        == 1
    )
    out = capsys.readouterr().out
    assert "vcam1: FAILED" in out
    assert "files go to" not in out
    assert discover("logger") == []


def test_oversized_values_are_refused_and_the_logger_keeps_saving(
    writer: Writer, cleanup: None, tmp_path: Path
) -> None:
    # issue 13 item 6: 'set -n 999...' answered ok, then 'on' killed the writer thread
    assert logger_cli.main(["start", "vcam1", "-n", "20", "--root", str(tmp_path)]) == 0
    huge = "99999999999999999999999999999"
    for argv in (["-n", huge], ["-z", huge], ["--timeout", "1e300"], ["--dir", "/proc/nope"]):
        done = _run_cmd(["vampires", "logger", "set", "vcam1", *argv])
        assert done.returncode == 1, argv
        assert "vcam1: set FAILED" in done.stdout, done.stdout
    done = _run_cmd(["vampires", "logger", "set", "vcam1", "-n", huge])
    assert "must be <= 2.14748e+09" in done.stdout
    done = _run_cmd(["vampires", "logger", "set", "vcam1", "--dir", "/proc/nope"])
    assert "cannot create the folder /proc/nope" in done.stdout
    st = status("vcam1")
    assert (st["cube_size"], st["cubes"], st["timeout"]) == (20, -1, 0.0)
    assert st["folder"] == ""
    done = _run_cmd(["vampires", "logger", "on", "vcam1"])
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: status("vcam1")["logger"]["files"] >= 2, 30, "two cubes")  # type: ignore[index]
    st = status("vcam1")
    assert st["logger"]["error"] is None  # type: ignore[index]
    assert st["worker_failure"] is None


def test_logger_daemon_survives_its_stream_file_shrinking(cleanup: None, tmp_path: Path) -> None:
    # issue 13 item 7: truncating a mapped stream killed the logger daemon with SIGBUS
    from vampires.errors import StreamError

    stream = Stream.create("vcam1", SHAPE, np.uint16)
    frame = np.zeros(SHAPE, np.uint16)

    def pump(s: Stream, n: int) -> None:
        for i in range(n):
            frame.fill(i)
            s.write(frame, acquisition_time=time.time())
            time.sleep(0.003)

    assert logger_cli.main(["start", "vcam1", "-n", "10", "--root", str(tmp_path)]) == 0
    pid = status("vcam1")["pid"]
    assert startlog.main(["-c", "1", "-z", "-1"]) == 0
    wait_for(lambda: status("vcam1")["logger"]["attached"], 10, "the logger to attach")  # type: ignore[index]
    pump(stream, 30)
    wait_for(lambda: status("vcam1")["logger"]["files"] >= 1, 20, "a first cube")  # type: ignore[index]
    os.truncate(stream.path, 0)  # the logger's reader is blocked in its semaphore wait
    with pytest.raises(StreamError, match="shrank"):
        stream.write(frame)
    stream.close()

    def error() -> str:
        return str(status("vcam1")["logger"]["error"] or "")  # type: ignore[index]

    wait_for(lambda: "vcam1" in error(), 20, "the error in the status")
    assert pid_alive(int(pid))  # type: ignore[arg-type]
    files = status("vcam1")["logger"]["files"]  # type: ignore[index]
    stream = Stream.create("vcam1", SHAPE, np.uint16, exist_ok=True)
    try:
        deadline = time.monotonic() + 30
        while status("vcam1")["logger"]["files"] < files + 2:  # type: ignore[index,operator]
            assert time.monotonic() < deadline, f"no new cube after re-creation: {error()}"
            pump(stream, 10)
        assert status("vcam1")["pid"] == pid
        assert status("vcam1")["state"] == "saving"
        assert error() == ""
    finally:
        stream.destroy()
