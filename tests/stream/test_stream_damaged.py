"""Damaged or hostile stream files (issue 13 item 7): refused or survived, never a hang or SIGBUS.

Each case runs in a child process with a timeout: a hang fails the test instead
of the suite, and a SIGBUS shows as a negative return code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vampires.errors import StreamError
from vampires.stream import Stream
from vampires.stream.sem import FLUSH_LIMIT, Semaphore


def _python(code: str, shm_dir: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _vampires(*argv: str, shm_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["vampires", *argv],
        env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fifo_named_like_a_stream_is_refused_without_blocking(shm_dir: Path) -> None:
    os.mkfifo(shm_dir / "X.im.shm")
    done = _python(
        """
        from vampires.errors import StreamLayoutError
        from vampires.stream import Stream
        try:
            Stream.open("X")
        except StreamLayoutError as exc:
            print("refused:", exc)
        """,
        shm_dir,
    )
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stdout
    info = _vampires("stream", "info", "X", shm_dir=shm_dir)
    assert info.returncode == 1
    assert "not a regular file" in info.stderr
    ls = _vampires("stream", "ls", shm_dir=shm_dir)
    assert ls.returncode == 1
    assert "X" in ls.stdout
    assert "not a regular file" in ls.stdout


def test_random_bytes_in_the_semaphores_do_not_make_reader_spin(shm_dir: Path) -> None:
    with Stream.create("garbage", (8, 8), np.uint16, nsemaphores=3) as s:
        layout = s.layout
        path = s.path
    with path.open("r+b") as f:
        f.seek(layout.semaphores)
        f.write(b"\xff\xff\xff\x7f" * 8 * layout.nsemaphores)  # counts of 2**31 - 1
    done = _python(
        """
        from vampires.errors import StreamError
        from vampires.stream import Stream
        with Stream.open("garbage") as s:
            try:
                s.reader()
            except StreamError as exc:
                print("refused:", exc)
            print("semReadPID", list(s.metadata()["semReadPID"]))
        """,
        shm_dir,
    )
    assert done.returncode == 0, done.stderr
    assert "the stream file is damaged; re-create the stream" in done.stdout
    assert "semReadPID [0, -1, -1]" in done.stdout  # the claim was released


def test_flush_is_bounded() -> None:
    import ctypes

    cell = (ctypes.c_uint64 * 4)()
    sem = Semaphore(ctypes.addressof(cell), "test semaphore")
    sem.init(0)
    for _ in range(3):
        sem.post()
    assert sem.flush() == 3
    cell[0] = 2**31 - 1  # what random bytes give: a count no writer makes
    with pytest.raises(StreamError, match=f"after {FLUSH_LIMIT} decrements"):
        sem.flush()


TRUNCATE_WHILE_WAITING = """
import os, sys, threading, time
import numpy as np
from vampires.errors import StreamLayoutError
from vampires.stream import Stream

s = Stream.create("shrink", (64, 64), np.uint16)
r = s.reader()
s.write(np.ones((64, 64), np.uint16))
r.next(5.0)

def truncate():
    time.sleep(0.5)  # the reader is blocked in its semaphore wait by then
    os.truncate(s.path, {size})

threading.Thread(target=truncate).start()
try:
    r.next(3.0)
except StreamLayoutError as exc:
    print("next:", exc)
for what, call in (("read", s.read), ("cnt0", lambda: s.cnt0),
                   ("keywords", lambda: s.keywords.to_dict()), ("reader", s.reader)):
    try:
        call()
    except StreamLayoutError as exc:
        print(what + ":", "shrank" in str(exc))
print("stale:", s.is_stale())
r.close()
s.close()
print("alive")
"""


@pytest.mark.parametrize("size", [0, 100])
def test_a_reader_survives_its_file_shrinking_while_it_waits(shm_dir: Path, size: int) -> None:
    done = _python(TRUNCATE_WHILE_WAITING.format(size=size), shm_dir)
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "next: stream 'shrink': its file shrank" in out
    for what in ("read", "cnt0", "keywords", "reader"):
        assert f"{what}: True" in out
    assert "stale: True" in out
    assert out.rstrip().endswith("alive")


def test_read_copies_with_a_short_read_not_a_sigbus(shm_dir: Path) -> None:
    done = _python(
        """
        import os
        import numpy as np
        from vampires.errors import StreamLayoutError
        from vampires.stream import Stream
        s = Stream.create("short", (256, 256), np.uint16)
        s.write(np.full((256, 256), 7, np.uint16))
        out = np.empty((256, 256), np.uint16)
        s.read(out=out)
        print("first", int(out[0, 0]))
        v = s._views()
        os.truncate(s.path, s.layout.data + 1000)  # after the size check, before the copy
        try:
            s._copy_pixels(out, v.data)
        except StreamLayoutError as exc:
            print("copy:", exc)
        """,
        shm_dir,
    )
    assert done.returncode == 0, done.stderr
    assert "first 7" in done.stdout
    assert "copy: stream 'short': its file shrank" in done.stdout


def test_stream_mode_is_configurable(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Stream.create("m666", (2, 2), np.uint8) as s:
        assert s.path.stat().st_mode & 0o777 == 0o666  # the C library's default
    with Stream.create("m640", (2, 2), np.uint8, mode=0o640) as s:
        assert s.path.stat().st_mode & 0o777 == 0o640
    monkeypatch.setenv("VAMPIRES_STREAM_MODE", "0660")
    with Stream.create("m660", (2, 2), np.uint8) as s:
        assert s.path.stat().st_mode & 0o777 == 0o660
    for bad in ("0999", "0066", "rw"):
        monkeypatch.setenv("VAMPIRES_STREAM_MODE", bad)
        with pytest.raises(StreamError, match="VAMPIRES_STREAM_MODE"):
            Stream.create("bad", (2, 2), np.uint8)
    assert not (shm_dir / "bad.im.shm").exists()
    monkeypatch.delenv("VAMPIRES_STREAM_MODE")
    config = tmp_path / "config.toml"
    config.write_text('stream_mode = "0600"\n')
    monkeypatch.setenv("VAMPIRES_CONFIG", str(config))
    with Stream.create("m600", (2, 2), np.uint8) as s:
        assert s.path.stat().st_mode & 0o777 == 0o600
    made = _vampires(
        "stream", "create", "cli", "--shape", "2", "2", "--mode", "0640", shm_dir=shm_dir
    )
    assert made.returncode == 0, made.stderr
    assert (shm_dir / "cli.im.shm").stat().st_mode & 0o777 == 0o640


def test_ls_of_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    done = _vampires("stream", "--shm-dir", str(tmp_path / "nonexistent"), "ls", shm_dir=tmp_path)
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert done.stdout == ""


SENDER_SURVIVES = """
import os, time
import numpy as np
from pathlib import Path
from vampires.errors import StreamError
from vampires.link.tcp import TcpReceiver, TcpSender
from vampires.stream import Stream

remote = Path(os.environ["MILK_SHM_DIR"]) / "remote"
remote.mkdir()

def wait(pred, what, timeout=30.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.02)

def published(name):
    try:
        with Stream.open(name, shm_dir=remote) as s:
            return s.cnt0
    except StreamError:
        return -1

src = Stream.create("vcam1", (32, 32), np.uint16)
with TcpReceiver(0, shm_dir=remote).start() as rx, \\
        TcpSender("vcam1", "127.0.0.1", rx.port).start() as tx:
    frame = np.zeros((32, 32), np.uint16)
    def pump(stream, n):
        for i in range(n):
            frame.fill(i)
            stream.write(frame)
            time.sleep(0.005)
    wait(lambda: tx.status().connected, "connection")
    pump(src, 20)
    wait(lambda: published("vcam1") >= 1, "first frames")
    os.truncate(src.path, 0)
    try:
        src.write(frame)
    except StreamError as exc:
        print("writer:", "shrank" in str(exc))
    wait(lambda: "shrank" in (tx.status().error or "") or "truncated" in (tx.status().error or ""),
         "the error in the sender status")
    print("sender error:", tx.status().error)
    src.close()
    src = Stream.create("vcam1", (32, 32), np.uint16, exist_ok=True)
    before = published("vcam1")
    end = time.monotonic() + 30
    while published("vcam1") < 5 and time.monotonic() < end:
        pump(src, 5)
    print("re-attached:", published("vcam1") >= 5, before)
src.destroy()
print("alive")
"""


def test_tcp_sender_survives_a_truncated_stream_and_reattaches(shm_dir: Path) -> None:
    done = _python(SENDER_SURVIVES, shm_dir, timeout=120)
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "writer: True" in done.stdout
    assert "sender error: stream vcam1:" in done.stdout
    assert "re-attached: True" in done.stdout
    assert done.stdout.rstrip().endswith("alive")
