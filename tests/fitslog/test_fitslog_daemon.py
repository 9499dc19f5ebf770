"""The logger daemon's commands, in-process with a recording logger, over real ipc sockets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.helpers import wait_for
from vampires.control import ControlClient
from vampires.errors import (
    CommandError,
    ConfigError,
    DaemonAlreadyRunning,
    DaemonNotRunning,
    VampiresError,
)
from vampires.fitslog.daemon import LoggerDaemon, status_to_dict
from vampires.fitslog.policy import CubePolicy


@attrs.frozen(kw_only=True)
class FakeStatus:
    state: str
    frames: int
    files: int
    dropped: int
    current_file: Path | None
    folder: Path | None
    memory: int
    error: str | None


class FakeLogger:
    """Records the calls the daemon makes (the real Logger is tested elsewhere)."""

    def __init__(self, stream: str, policy: CubePolicy, root: Path | None, dirname: Path | None):
        self.stream, self.policy, self.root, self.dirname = stream, policy, root, dirname
        self.calls: list[tuple[str, Any]] = []
        self.saving = False
        self.closed = False

    def start(self) -> None:
        self.calls.append(("start", None))
        self.saving = True

    def pause(self, wait_for_cube: bool = False) -> None:
        self.calls.append(("stop", wait_for_cube))
        self.saving = False

    def next_cube(self) -> None:
        self.calls.append(("next_cube", None))

    def set_policy(self, policy: CubePolicy) -> None:
        self.calls.append(("set_policy", policy))
        self.policy = policy

    def status(self) -> FakeStatus:
        return FakeStatus(
            state="saving" if self.saving else "idle",
            frames=7,
            files=1,
            dropped=0,
            current_file=None,
            folder=self.dirname or self.root,
            memory=1024,
            error=None,
        )

    def close(self, finish_cube: bool = True, timeout: float = 60.0) -> None:
        self.closed = True


class Harness:
    def __init__(self, tmp: Path, name: str = "vcam1") -> None:
        self.loggers: list[FakeLogger] = []

        def factory(stream: str, policy: CubePolicy, root: Path | None, dirname: Path | None):
            log = FakeLogger(stream, policy, root, dirname)
            self.loggers.append(log)
            return log

        self.daemon = LoggerDaemon(name, CubePolicy(frames_per_cube=100), root=tmp, factory=factory)
        self.stop = threading.Event()
        self.daemon.open()
        self.thread = threading.Thread(target=self.daemon.serve, args=(self.stop,), daemon=True)
        self.thread.start()

    @property
    def logger(self) -> FakeLogger:
        return self.loggers[-1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def call(command: str, **args: Any) -> dict[str, Any]:
    with ControlClient("logger", "vcam1", timeout=3.0) as client:
        return client.request(command, args)


def test_on_off_offc_next(harness: Harness) -> None:
    reply = call("on")
    assert reply["state"] == "saving"
    assert isinstance(reply["time"], float)
    assert call("off")["state"] == "idle"
    call("on", cubes=3)
    assert harness.logger.policy.cubes == 3
    call("offc")
    call("next")
    names = [c[0] for c in harness.logger.calls]
    assert names == ["start", "stop", "set_policy", "start", "stop", "next_cube"]
    assert harness.logger.calls[1] == ("stop", False)
    assert harness.logger.calls[4] == ("stop", True)


def test_set_and_get(harness: Harness, tmp_path: Path) -> None:
    reply = call("set", cube_size=250, cubes=-1, timeout=3.5)
    assert (reply["cube_size"], reply["cubes"], reply["timeout"]) == (250, -1, 3.5)
    assert harness.logger.policy == CubePolicy(frames_per_cube=250, cubes=-1, timeout=3.5)
    call("set", timeout=0)
    assert harness.logger.policy.timeout is None
    exact = tmp_path / "exact"
    reply = call("set", folder=str(exact))
    assert reply["folder"] == str(exact)
    assert harness.logger.dirname == exact  # re-created while idle
    assert call("get")["folder"] == str(exact)


@pytest.mark.parametrize(
    ("command", "args", "match"),
    [
        ("set", {"cube_size": 0}, ">= 1"),
        ("set", {"cube_size": "250"}, "must be int"),
        ("set", {"cubes": 0}, "-1"),
        ("set", {}, "nothing to change"),
        ("set", {"root": "", "folder": ""}, "needs a root"),
        ("set", {"bogus": 1}, "unknown argument"),
        ("on", {"cubes": 0}, "-1"),
        ("on", {"cubes": True}, "must be int"),
        # issue 13 item 6: values past the policy's bounds never reach the logger
        ("set", {"cube_size": 99999999999999999999999999999}, "<= 2.14748e\\+09"),
        ("set", {"cube_size": 2**31}, "<= 2.14748e\\+09"),
        ("set", {"cubes": 2**63}, "<= 2.14748e\\+09"),
        ("set", {"timeout": 1e300}, "<= 86400"),
        ("set", {"cube_size": 10, "timeout": 1e300}, "<= 86400"),
        ("on", {"cubes": 99999999999999999999999999999}, "<= 2.14748e\\+09"),
        ("set", {"folder": "relative/dir"}, "must be an absolute path"),
        ("set", {"folder": "/proc/nope"}, "cannot create the folder /proc/nope"),
        ("set", {"root": "/proc/nope", "cube_size": 10}, "cannot create the folder /proc/nope"),
        ("off", {"now": True}, "unknown argument"),
        ("launch", {}, "unknown command"),
    ],
)
def test_bad_commands_change_nothing(
    harness: Harness, command: str, args: dict[str, Any], match: str
) -> None:
    before = call("get")
    with pytest.raises(CommandError, match=match) as info:
        call(command, **args)
    assert info.value.reply["state"] == "idle"  # type: ignore[attr-defined]
    after = call("get")
    assert {k: v for k, v in after.items() if k != "time"} == {
        k: v for k, v in before.items() if k != "time"
    }
    assert harness.logger.calls == []


def test_folder_change_refused_while_saving(harness: Harness, tmp_path: Path) -> None:
    call("on")
    with pytest.raises(CommandError, match="only while not saving"):
        call("set", folder=str(tmp_path / "x"))
    assert harness.logger.dirname is None


def test_status_is_json(harness: Harness, tmp_path: Path) -> None:
    reply = call("status")
    assert reply["logger"]["frames"] == 7
    assert reply["logger"]["folder"] == str(tmp_path)
    assert reply["disk_free"] > 0
    assert reply["cube_size"] == 100


def test_restart_and_kill(harness: Harness, shm_dir: Path) -> None:
    first = harness.logger
    call("restart")
    assert first.closed
    assert harness.logger is not first
    reply = call("kill")
    assert reply["state"] == "killed"
    harness.thread.join(5.0)
    assert not harness.thread.is_alive()
    assert harness.logger.closed
    assert not (shm_dir / "vampires" / "logger-vcam1.sock").exists()
    with pytest.raises(DaemonNotRunning, match="vampires_preplog"):
        call("status")


def test_second_daemon_refused_before_building_a_logger(harness: Harness, tmp_path: Path) -> None:
    built: list[str] = []

    def factory(*a: Any) -> FakeLogger:
        built.append("x")
        return FakeLogger(*a)

    other = LoggerDaemon("vcam1", CubePolicy(frames_per_cube=1), root=tmp_path, factory=factory)
    with pytest.raises(DaemonAlreadyRunning):
        other.open()
    assert built == []


def test_needs_a_folder() -> None:
    with pytest.raises(ConfigError, match="root"):
        LoggerDaemon("vcam1", CubePolicy(frames_per_cube=1))


def test_status_to_dict_converts() -> None:
    import enum

    class S(enum.Enum):
        A = "saving"

    @attrs.frozen
    class St:
        state: S
        path: Path
        nan: float
        items: tuple[int, ...]

    assert status_to_dict(St(S.A, Path("/x"), float("nan"), (1, 2))) == {
        "state": "saving",
        "path": "/x",
        "nan": None,
        "items": [1, 2],
    }


def test_tcp_control_with_curve_keys(tmp_path: Path) -> None:
    from vampires.control.keys import generate_keys

    keys = generate_keys(tmp_path / "keys")
    daemon = LoggerDaemon(
        "vcam3",
        CubePolicy(frames_per_cube=5),
        root=tmp_path,
        factory=FakeLogger,
        tcp="tcp://127.0.0.1:*",
        curve_dir=keys,
    )
    stop = threading.Event()
    daemon.open()
    thread = threading.Thread(target=daemon.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        endpoint = daemon.server.tcp_endpoint
        assert endpoint is not None
        assert endpoint.startswith("tcp://127.0.0.1:")
        with ControlClient("logger", "vcam3", endpoint=endpoint, curve_dir=keys) as client:
            assert client.call("on")["state"] == "saving"
            assert client.call("status")["tcp"] == endpoint
    finally:
        stop.set()
        thread.join(5.0)
    with pytest.raises(ConfigError, match="CURVE"):
        LoggerDaemon("vcam3", CubePolicy(frames_per_cube=5), root=tmp_path, tcp="tcp://*:1")


@pytest.mark.integration
def test_disk_full_is_visible_through_the_control_plane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno
    import os
    import time

    import numpy as np

    from vampires.cli import logger as logger_cli
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.remote import LoggerGroup
    from vampires.stream import Stream

    full = threading.Event()

    def flaky_write(fd: int, data: memoryview) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    def factory(stream: str, policy: CubePolicy, root: Path | None, dirname: Path | None):
        return Logger(stream, policy, root=root, dirname=dirname, write_chunk=flaky_write)

    stream = Stream.create("vcam1", (16, 16), np.uint16, exist_ok=True)
    stop = threading.Event()

    def publish() -> None:
        frame = np.zeros((16, 16), np.uint16)
        while not stop.is_set():
            stream.write(frame, acquisition_time=time.time())
            stop.wait(0.003)

    pub = threading.Thread(target=publish, daemon=True)
    pub.start()
    daemon = LoggerDaemon("vcam1", CubePolicy(frames_per_cube=10), root=tmp_path, factory=factory)
    daemon.open()
    serving = threading.Thread(target=daemon.serve, args=(stop,), daemon=True)
    serving.start()
    group = LoggerGroup(["vcam1"])

    def logger_status() -> dict[str, Any]:
        reply = group.status()["vcam1"].reply
        assert reply is not None
        return dict(reply["logger"])

    try:
        assert group.on().ok
        deadline = time.monotonic() + 20  # for the three waits together
        wait_for(lambda: logger_status()["files"] >= 1, deadline - time.monotonic(), "a cube")
        full.set()
        wait_for(lambda: logger_status()["error"], deadline - time.monotonic(), "the error")
        assert "disk full" in logger_status()["error"]
        assert group.status()["vcam1"].state == "saving"  # keeps running
        capsys.readouterr()
        assert logger_cli.main(["ls"]) == 0
        assert "ERROR: " in capsys.readouterr().out
        full.clear()
        wait_for(lambda: not logger_status()["error"], deadline - time.monotonic(), "no error")
        assert group.off().ok
    finally:
        stop.set()
        serving.join(10)
        pub.join(5)
        stream.destroy()


def test_flush_and_sync_intervals_are_daemon_options(harness: Harness) -> None:
    reply = call("set", flush=0.5, sync=-1)
    assert (reply["flush"], reply["sync"]) == (0.5, -1.0)
    assert harness.logger.policy.flush_interval == 0.5
    assert harness.logger.policy.sync_interval is None  # only when the cube closes
    call("set", sync=0)
    assert harness.logger.policy.sync_interval == 0.0
    with ControlClient("logger", "vcam1", timeout=3.0) as client:
        for bad in ({"flush": 0}, {"flush": 1e9}, {"sync": 1e9}):
            with pytest.raises(VampiresError, match=r"flush_interval|sync_interval"):
                client.call("set", **bad)
    assert harness.logger.policy.flush_interval == 0.5


def test_policy_bounds_are_checked_by_the_daemon_even_past_the_arg_schema(
    harness: Harness,
) -> None:
    # the command schema takes its bounds from the policy; the policy itself is
    # the last check (evolve) before anything is applied
    for name, arg in harness.daemon.commands()["set"].args.items():
        if arg.maximum is not None:
            assert name in {"cube_size", "cubes", "timeout"}
    with pytest.raises(CommandError, match=r"1\.\.2147483647"):
        harness.daemon._set({"cube_size": 2**31})
    assert harness.logger.calls == []


class DyingLogger(FakeLogger):
    """A fake logger with a real worker thread that dies on demand."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.crash = threading.Event()
        self.thread = threading.Thread(target=self._work, name="logger-fake-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        self.crash.wait()
        msg = "Python int too large to convert to C long"
        raise OverflowError(msg)

    def workers_alive(self) -> bool:
        return self.thread.is_alive()

    def close(self, finish_cube: bool = True, timeout: float = 60.0) -> None:
        self.crash.set()
        super().close(finish_cube, timeout)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_thread_is_reported_and_the_logger_recreated(tmp_path: Path) -> None:
    from vampires.fitslog import daemon as daemon_mod

    loggers: list[DyingLogger] = []

    def factory(*a: Any) -> DyingLogger:
        loggers.append(DyingLogger(*a))
        return loggers[-1]

    daemon = LoggerDaemon("vcam1", CubePolicy(frames_per_cube=10), root=tmp_path, factory=factory)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(loggers) == 1, 20, "the logger", interval=0.05)
        call("on")
        loggers[0].crash.set()  # the worker thread dies with an uncaught exception
        wait_for(lambda: len(loggers) == 2, 20, "the logger to be re-created", interval=0.05)
        reply = call("status")
        assert reply["state"] == "saving"  # saving resumed
        assert "OverflowError: Python int too large" in reply["worker_failure"]
        assert "saving resumed" in reply["worker_failure"]
        assert loggers[0].closed
        assert ("start", None) in loggers[1].calls
        # a failure that keeps coming back ends the daemon with the reason
        for n in range(2, daemon_mod.MAX_RESTARTS + 1):
            loggers[-1].crash.set()
            if n < daemon_mod.MAX_RESTARTS:

                def recreated(n: int = n) -> bool:
                    return len(loggers) == n + 1

                wait_for(recreated, 20, "another re-creation", interval=0.05)
        thread.join(20.0)
        assert not thread.is_alive()
        assert daemon.fatal is not None
        assert f"died {daemon_mod.MAX_RESTARTS} times" in daemon.fatal
        assert "vampires_preplog" in daemon.fatal
        with pytest.raises(DaemonNotRunning):
            call("status")
    finally:
        stop.set()
        thread.join(5.0)
