"""spawn_daemon, discovery and group calls with real daemon processes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import wait_for
from vampires.control import ControlClient, discover, group_call, spawn_daemon
from vampires.control.spawn import pid_alive
from vampires.errors import (
    ConfigError,
    ControlError,
    ControlTimeout,
    DaemonAlreadyRunning,
    DaemonNotRunning,
)

pytestmark = pytest.mark.integration

ECHO = [sys.executable, "-m", "vampires.control.echo"]


def _kill(pid: int) -> None:
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    started: list[int] = []
    yield started
    for pid in started:
        _kill(pid)


def _wait_dead(pid: int) -> None:
    wait_for(lambda: not pid_alive(pid), 5.0, f"process {pid} to exit")


def test_spawn_detached_and_refuse_second(pids: list[int], shm_dir: Path) -> None:
    pid = spawn_daemon([*ECHO, "one"], kind="echo", name="one", timeout=10.0)
    pids.append(pid)
    assert os.getsid(pid) == pid  # its own session: survives the terminal
    assert os.getppid() != pid
    with ControlClient("echo", "one") as client:
        assert client.ping()["pid"] == pid
    with pytest.raises(DaemonAlreadyRunning, match="already running"):
        spawn_daemon([*ECHO, "one"], kind="echo", name="one", timeout=10.0)
    log = shm_dir / "vampires" / "echo-one.log"
    assert "serving on" in log.read_text()
    info = discover("echo")
    assert [(d.name, d.pid, d.state) for d in info] == [("one", pid, "count=0")]
    with ControlClient("echo", "one") as client:
        client.call("stop")
    _wait_dead(pid)
    assert not (shm_dir / "vampires" / "echo-one.sock").exists()


def test_kill9_leaves_stale_socket_cleaned_at_next_start(pids: list[int], shm_dir: Path) -> None:
    pid = spawn_daemon([*ECHO, "two"], kind="echo", name="two")
    pids.append(pid)
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    assert (shm_dir / "vampires" / "echo-two.sock").exists()
    with (
        ControlClient("echo", "two", timeout=0.3) as client,
        pytest.raises(DaemonNotRunning, match="died"),
    ):
        client.ping()
    result = group_call("echo", ["two"], "ping", timeout=0.3)
    assert result["two"].status == "not-running"
    pid2 = spawn_daemon([*ECHO, "two"], kind="echo", name="two")
    pids.append(pid2)
    with ControlClient("echo", "two") as client:
        assert client.ping()["pid"] == pid2


def test_daemon_dying_at_startup_reports_its_log(shm_dir: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad config: frob'); sys.exit(3)"]
    with pytest.raises(ControlError, match=r"(?s)exited during start-up.*bad config: frob"):
        spawn_daemon(argv, kind="echo", name="bad", timeout=10.0)


def test_startup_failure_is_one_line_without_an_earlier_runs_log(shm_dir: Path) -> None:
    # issue 13 item 11: the message held the whole log, earlier runs included
    argv = [sys.executable, "-c", "import sys; print('first run: old trouble'); sys.exit(3)"]
    with pytest.raises(ControlError):
        spawn_daemon(argv, kind="echo", name="again", timeout=10.0)
    argv = [
        sys.executable,
        "-c",
        "import sys; print('noise'); print('ConfigError: fps must be > 0'); sys.exit(3)",
    ]
    with pytest.raises(ControlError) as info:
        spawn_daemon(argv, kind="echo", name="again", timeout=10.0)
    text = str(info.value)
    assert "\n" not in text
    assert "old trouble" not in text
    assert text.startswith("echo daemon for 'again' exited during start-up: ConfigError: fps")
    assert "echo-again.log" in text


def test_daemon_never_answering_is_terminated(shm_dir: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(ControlTimeout, match=r"did not answer ping within 0\.5 s") as info:
        spawn_daemon(argv, kind="echo", name="mute", timeout=0.5)
    pid = int(str(info.value).split("(pid ")[1].split(")")[0])
    _wait_dead(pid)


def test_spawn_bad_input(shm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="empty argv"):
        spawn_daemon([], kind="echo", name="x")
    with pytest.raises(ConfigError, match="not found on PATH"):
        spawn_daemon(["no-such-program-xyz"], kind="echo", name="x")


def test_group_call_two_daemons_skew(pids: list[int]) -> None:
    pids.extend(spawn_daemon([*ECHO, n], kind="echo", name=n) for n in ("left", "right"))
    skews = []
    for _ in range(20):
        result = group_call("echo", ["left", "right"], "incr", {"by": 1}, timeout=2.0)
        assert result.ok
        assert result.skew is not None
        skews.append(result.skew)
    skews.sort()
    print(f"two-daemon skew: median {skews[10] * 1e3:.3f} ms, max {skews[-1] * 1e3:.3f} ms")  # noqa: T201
    final = group_call("echo", ["left", "right"], "get", timeout=2.0)
    assert [r.reply["count"] for r in final if r.reply] == [20, 20]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=6,
)


def test_fuzz_real_daemon(pids: list[int], shm_dir: Path) -> None:
    pids.append(spawn_daemon([*ECHO, "fuzz"], kind="echo", name="fuzz"))
    path = shm_dir / "vampires" / "echo-fuzz.sock"
    with zmq.Context() as ctx, ctx.socket(zmq.REQ) as req:
        req.linger = 0
        req.connect(f"ipc://{path}")

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            raw=st.binary(max_size=100)
            | JSONISH.map(lambda v: json.dumps(v).encode())
            | st.builds(
                lambda c, a: json.dumps({"command": c, "args": a}).encode(),
                st.sampled_from(["incr", "get", "sleep", "nope", "stop", "fail"]).filter(
                    lambda c: c not in {"stop", "sleep"}
                ),
                JSONISH.filter(lambda a: not (isinstance(a, dict) and not a)),
            )
        )
        def check(raw: bytes) -> None:
            req.send(raw)
            assert req.poll(5000), f"no reply to {raw!r}"
            reply = json.loads(req.recv())
            assert isinstance(reply["ok"], bool)
            assert isinstance(reply["time"], float)
            if raw.startswith(b'{"command": "incr"'):
                return
            assert reply["state"] == "count=0" or reply["ok"]

        check()
    with ControlClient("echo", "fuzz") as client:
        reply = client.ping()
        assert reply["ok"]
