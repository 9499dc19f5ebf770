"""``vampires stream ls|info|create|rm`` in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vampires.cli.main import main as vampires_main
from vampires.cli.stream import main
from vampires.stream import Stream


def test_create_ls_info_rm(capsys: pytest.CaptureFixture[str], shm_dir: Path):
    assert main(["ls"]) == 0
    assert "no streams in" in capsys.readouterr().out
    assert (
        main(["create", "vcam1", "--shape", "1096", "2236", "--dtype", "uint16", "--nkw", "8"]) == 0
    )
    out = capsys.readouterr().out
    assert "vcam1" in out
    assert "(1096, 2236)" in out
    with Stream.open("vcam1") as s:
        assert s.shape == (1096, 2236)
        assert s.nkeywords == 8
        s.keywords["EXPTIME"] = (1e-3, "[s] Exposure time")
        s.keywords["DATA-TYP"] = "OBJECT"
        s.write(np.zeros(s.shape, np.uint16))
    assert main(["ls", "--interval", "0.01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SHAPE", "DTYPE", "CNT0", "RATE/s", "KW", "LINKS"]
    assert lines[1].split()[:4] == ["vcam1", "1096x2236", "uint16", "1"]
    assert lines[1].split()[5:] == ["2", "-"]
    assert main(["info", "vcam1"]) == 0
    out = capsys.readouterr().out
    assert "size [2236, 1096]" in out
    assert "EXPTIME" in out
    assert "[s] Exposure time" in out
    assert "'OBJECT'" in out
    assert "semReadPID" in out
    assert vampires_main(["stream", "rm", "vcam1"]) == 0
    assert "vcam1: removed" in capsys.readouterr().out
    assert not Stream.exists("vcam1")


@pytest.mark.integration
def test_ls_measures_rate(capsys: pytest.CaptureFixture[str]):
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import time, numpy as np\n"
         "from vampires.stream import Stream\n"
         "s = Stream.create('busy', (8, 8), np.uint16)\n"
         "print('ready', flush=True)\n"
         "for _ in range(3000):\n"
         "    s.write(np.zeros((8, 8), np.uint16)); time.sleep(0.001)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        assert main(["ls", "--interval", "0.3"]) == 0
        row = capsys.readouterr().out.splitlines()[1].split()
        assert row[0] == "busy"
        assert float(row[4]) > 0
    finally:
        writer.kill()
        writer.communicate(timeout=30)


def test_errors_are_reported(capsys: pytest.CaptureFixture[str], shm_dir: Path):
    assert main(["info", "nope"]) == 1
    assert "no stream 'nope'" in capsys.readouterr().err
    assert main(["create", "a/b", "--shape", "2", "2"]) == 1
    assert "invalid stream name" in capsys.readouterr().err
    assert main(["create", "x", "--shape", "2", "2", "--dtype", "complex64"]) == 1
    assert "not writable" in capsys.readouterr().err
    assert main(["create", "x", "--shape", "2", "2"]) == 0
    assert main(["create", "x", "--shape", "2", "2"]) == 1
    assert "already exists" in capsys.readouterr().err
    (shm_dir / "junk.im.shm").write_text("not a stream")
    assert main(["ls", "--interval", "0"]) == 1
    assert "junk" in capsys.readouterr().out
    assert main(["rm", "junk", "nope"]) == 1
    err = capsys.readouterr().err
    assert "--force" in err
    assert "nope" in err
    assert (shm_dir / "junk.im.shm").exists()
    assert main(["rm", "--force", "junk"]) == 0
    assert not (shm_dir / "junk.im.shm").exists()
    with pytest.raises(SystemExit):
        main(["create", "y"])  # --shape is required
    with pytest.raises(SystemExit):
        main([])
    capsys.readouterr()


@pytest.mark.integration
def test_command_import_path_is_light():
    code = (
        "import sys, vampires.cli.stream\n"
        "bad = [m for m in ('numba', 'astropy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_ls_shows_live_link_daemons(capsys: pytest.CaptureFixture[str], shm_dir: Path):
    import fcntl
    import os

    from vampires.control.protocol import lock_path, socket_path

    Stream.create("vcam1", (2, 2), np.uint16).close()
    sock = socket_path("link", "vcam1.tcp-send", shm_dir)
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.touch()
    socket_path("link", "vcam1.zmq-pub", shm_dir).touch()  # stale: nobody holds its lock
    fd = os.open(lock_path("link", "vcam1.tcp-send", shm_dir), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running daemon holds
        assert main(["ls", "--interval", "0"]) == 0
        row = capsys.readouterr().out.splitlines()[1].split()
        assert row[0] == "vcam1"
        assert row[6] == "tcp-send"
    finally:
        os.close(fd)
