"""``fitswatcher`` / ``vampires watch``: in-process, as a process, and live in tmux."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vampires.cli import fitswatcher
from vampires.cli.main import main as vampires_main

BIN = Path(sys.executable).parent
T0 = 1_718_064_000.0


def write_cube(path: Path, shape: tuple[int, ...], *, mtime: float | None = None, **cards) -> Path:
    """A real FITS header (astropy) claiming ``shape``, data extended sparsely."""
    from astropy.io import fits

    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 16
    header["NAXIS"] = len(shape)
    for i, n in enumerate(reversed(shape), start=1):
        header[f"NAXIS{i}"] = n
    header["BZERO"] = 32768
    header["DATA-TYP"] = "DARK"
    header["OBSERVER"] = "scexao"
    for key, value in cards.items():
        header[key.replace("_", "-")] = value
    raw = header.tostring().encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(raw)
        fh.truncate(len(raw) + -(-2 * math.prod(shape) // 2880) * 2880)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def night(tmp_path: Path) -> Path:
    """``<root>/20240611/vcam1`` with two cubes (across midnight) and ``vcam2`` with one."""
    root = tmp_path / "20240611"
    write_cube(root / "vcam1" / "vcam1_23:59:49.294402958.fits", (249, 1104, 2228), mtime=T0 - 11)
    write_cube(root / "vcam1" / "vcam1_00:00:03.628172287.fits", (1000, 1104, 2228), mtime=T0 + 3)
    write_cube(root / "vcam2" / "vcam2_00:00:05.715949178.fits", (1000, 1104, 2232), mtime=T0 + 5)
    (root / "vcam1" / "vcam1_00:00:03.628172287.txt").write_text("# sidecar\n")
    return root


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich: no wrapping of long tmp paths


def test_once_prints_the_panel(night: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fitswatcher.main(["-n", "3", "--once", str(night / "vcam*")]) == 0
    out = capsys.readouterr().out
    lines = [line.strip("│ ") for line in out.splitlines()]
    assert out.startswith("╭─ FITS Watcher - ")
    assert f"{night}/vcam1/ - 2 FITS files (6.1 GB)" in lines
    assert "vcam1_00:00:03.628172287.fits - (1000, 1104, 2228) 4919 MB | DARK scexao" in lines
    assert "vcam1_23:59:49.294402958.fits - (249, 1104, 2228) 1225 MB | DARK scexao" in lines
    assert f"{night}/vcam2/ - 1 FITS files (4.9 GB)" in lines
    assert lines.index(f"{night}/vcam2/ - 1 FITS files (4.9 GB)") == 5  # blank line before
    assert lines[4] == ""


def test_json_once(night: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fitswatcher.main(["--once", "--json", "-n", "1", str(night / "vcam*")]) == 0
    doc = json.loads(capsys.readouterr().out)
    dt.datetime.fromisoformat(doc["time"])
    assert [f["path"] for f in doc["folders"]] == [str(night / "vcam1"), str(night / "vcam2")]
    vcam1 = doc["folders"][0]
    assert vcam1["n_files"] == 2
    assert [f["name"] for f in vcam1["files"]] == ["vcam1_00:00:03.628172287.fits"]
    assert vcam1["files"][0]["shape"] == [1000, 1104, 2228]
    assert vcam1["files"][0]["flags"] == ["big"]


def test_tonight_uses_the_archive_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VAMPIRES_ARCHIVE_ROOT", str(tmp_path / "ARCHIVED_DATA"))
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert fitswatcher.main(["--tonight", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}/ARCHIVED_DATA/{today}/vcam* - waiting: no folder matches yet" in out
    write_cube(tmp_path / "ARCHIVED_DATA" / today / "vcam2" / "a.fits", (5, 4, 4))
    assert fitswatcher.main(["--tonight", "--once", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["folders"][0]["path"] == str(tmp_path / "ARCHIVED_DATA" / today / "vcam2")


def test_vampires_watch_is_the_same_command(night: Path, capsys) -> None:
    assert vampires_main(["watch", "--once", str(night / "vcam1")]) == 0
    assert f"{night}/vcam1/ - 2 FITS files" in capsys.readouterr().out


def test_ctrl_c_in_the_live_loop_exits_zero(
    night: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import vampires.watch.tui

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(vampires.watch.tui, "run_live", interrupted)
    assert fitswatcher.main([str(night / "vcam*")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give at least one PATTERN"),
        (["-n", "-1", "x"], "'n' must be an integer >= 0"),
        (["--interval", "0", "x"], "--interval must be > 0"),
        (["--interval", "nan", "x"], "--interval must be > 0"),
        (["", "x"], "empty pattern"),
    ],
)
def test_bad_arguments(argv: list[str], message: str, capsys) -> None:
    assert fitswatcher.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fitswatcher: ")
    assert message in err


def test_a_file_instead_of_a_folder(night: Path, capsys) -> None:
    path = night / "vcam1" / "vcam1_00:00:03.628172287.fits"
    assert fitswatcher.main(["--once", str(path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        fitswatcher.main(["-n", "three", "x"])
    assert exc.value.code == 2


def test_bad_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    config = tmp_path / "config.toml"
    config.write_text("archive_root = 3\n")
    monkeypatch.setenv("VAMPIRES_CONFIG", str(config))
    assert fitswatcher.main(["--tonight", "--once"]) == 2
    assert "archive_root" in capsys.readouterr().err


@pytest.mark.integration
def test_import_does_not_pull_numba_or_astropy() -> None:
    code = (
        "import sys, vampires.cli.fitswatcher, vampires.watch.tui\n"
        "heavy = sorted(m for m in ('numba', 'astropy', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.integration
def test_json_stream_and_sigint_as_a_process(night: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN / "fitswatcher"), "--json", "--interval", "0.1", str(night / "vcam*")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        docs = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert all(len(d["folders"]) == 2 for d in docs)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_sigint_stops_it_even_when_started_with_sigint_ignored(night: Path) -> None:
    # issue 13 item 12: a background job of a script (or nohup) inherits SIGINT
    # ignored; Python keeps it ignored, so 'kill -INT' never stopped fitswatcher
    proc = subprocess.Popen(
        [str(BIN / "fitswatcher"), "--json", "--interval", "0.1", str(night / "vcam*")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err


def _run_into_closed_pipe(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``argv`` with stdout a pipe whose reader is gone (``| head`` that exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            argv,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_a_closed_pipe_ends_commands_quietly(night: Path, shm_dir: Path) -> None:
    # issue 13 item 11: 'fitswatcher ... | head -40' and 'vampires stream info X | head -3'
    rc, err = _run_into_closed_pipe(
        [str(BIN / "fitswatcher"), "-n", "3", "--once", "--json", str(night / "vcam*")]
    )
    assert (rc, err) == (141, "")
    import numpy as np

    from vampires.stream import Stream

    with Stream.create("vcam1", (4, 4), np.uint16):
        rc, err = _run_into_closed_pipe(
            [str(BIN / "vampires"), "stream", "info", "vcam1"],
            env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
        )
    assert (rc, err) == (141, "")


# -- live, in a real terminal (tmux) ---------------------------------------------------


class Tmux:
    """A private tmux server (own socket) with one session, for one test; closed after it."""

    def __init__(self, command: str, *, width: int = 180, height: int = 40) -> None:
        self.socket = f"vampires-fw-{uuid.uuid4().hex[:8]}"
        self._run("new-session", "-d", "-s", "fw", "-x", str(width), "-y", str(height), command)

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-J", "-S", "-200", "-t", "fw")

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "fw", *keys)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                msg = f"tmux screen did not reach the expected state in {timeout} s:\n{text}"
                raise AssertionError(msg)
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        tmpdir = Path(os.environ.get("TMUX_TMPDIR", "/tmp"))
        (tmpdir / f"tmux-{os.getuid()}" / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux_factory() -> Iterator[Callable[[str], Tmux]]:
    if subprocess.run(["which", "tmux"], capture_output=True, check=False).returncode:
        pytest.skip("tmux is not installed")
    sessions: list[Tmux] = []

    def start(command: str) -> Tmux:
        session = Tmux(command)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def _shell(line: str) -> str:
    """Run ``line`` in sh with our venv first on PATH; keep the pane after it exits."""
    path = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return f"export PATH={shlex.quote(path)}; {line}; echo EXIT=$?; sleep 60"


@pytest.mark.integration
def test_live_panel_in_tmux_then_ctrl_c(tmp_path: Path, tmux_factory) -> None:
    """The operating page's one-liner, as written (shell expands $(date) and vcam*)."""
    archive = tmp_path / "ARCHIVED_DATA"
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    write_cube(archive / today / "vcam1" / "vcam1_10:00:00.000000000.fits", (250, 1104, 2228))
    write_cube(archive / today / "vcam2" / "vcam2_10:00:00.000000000.fits", (250, 1104, 2232))
    one_liner = f"fitswatcher -n 3 {archive}/$(date -u +'%Y%m%d')/vcam*"
    tmux = tmux_factory(_shell(one_liner))
    screen = tmux.wait_for(lambda s: "vcam2_10:00:00" in s)
    assert "╭─ FITS Watcher - " in screen
    assert f"│ {archive}/{today}/vcam1/ - 1 FITS files (1.2 GB)" in screen
    assert "vcam1_10:00:00.000000000.fits - (250, 1104, 2228) 1230 MB | DARK scexao" in screen
    # a new cube and a new camera folder appear while it runs (vcam3: sibling of the
    # shell-expanded vcam1/vcam2)
    write_cube(archive / today / "vcam1" / "vcam1_10:00:05.000000000.fits", (100, 1104, 2228))
    write_cube(archive / today / "vcam3" / "vcam3_10:00:06.000000000.fits", (10, 536, 536))
    screen = tmux.wait_for(lambda s: "vcam1_10:00:05" in s and "vcam3_10:00:06" in s)
    assert f"│ {archive}/{today}/vcam1/ - 2 FITS files (1.7 GB)" in screen
    assert screen.count("╭─ FITS Watcher") == 1  # refreshed in place, not scrolled
    tmux.keys("C-c")
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    assert "KeyboardInterrupt" not in screen


@pytest.mark.integration
def test_live_waiting_glob_then_folder_appears(tmp_path: Path, tmux_factory) -> None:
    pattern = f"{tmp_path}/night/vcam*"  # nothing matches: sh passes it literally
    tmux = tmux_factory(_shell(f"fitswatcher --interval 0.2 {pattern}"))
    tmux.wait_for(lambda s: f"{pattern} - waiting: no folder matches yet" in s)
    write_cube(tmp_path / "night" / "vcam1" / "vcam1_00:00:01.000000000.fits", (5, 64, 64))
    tmux.wait_for(lambda s: "vcam1_00:00:01.000000000.fits - (5, 64, 64)" in s)
    tmux.keys("C-c")
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=0" in screen
    assert "Traceback" not in screen


def test_once_exits_1_when_a_folder_cannot_be_listed(
    night: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def scandir(path):
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        assert fitswatcher.main(["--once", str(night / "vcam1")]) == 1
        assert "cannot list: Permission denied" in capsys.readouterr().out
        assert fitswatcher.main(["--once", "--json", str(night / "vcam1")]) == 1
    assert json.loads(capsys.readouterr().out)["folders"][0]["error"].startswith("cannot list")
