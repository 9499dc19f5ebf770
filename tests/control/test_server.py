"""DaemonServer and clients over real ipc (and CURVE tcp) sockets, in one process."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from vampires.control import (
    Arg,
    Command,
    ControlClient,
    DaemonServer,
    daemon_alive,
    discover,
    group_call,
)
from vampires.control.keys import generate_keys
from vampires.errors import (
    CommandError,
    ConfigError,
    ControlTimeout,
    DaemonAlreadyRunning,
    DaemonNotRunning,
)


class Served:
    """A DaemonServer serving in a thread (opened and closed by that thread)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.count = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.kwargs = kwargs
        self.name = name
        self.server: DaemonServer | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5.0)
        if self.error is not None:
            raise self.error

    def _incr(self, args: dict[str, Any]) -> dict[str, Any]:
        self.count += args.get("by", 1)
        return {"count": self.count}

    def _run(self) -> None:
        handlers = {
            "incr": Command(func=self._incr, args={"by": Arg(type="int")}),
            "slow": Command(
                func=lambda a: (self.stop.wait(a["s"]), {})[1],
                args={"s": Arg(type="float", required=True)},
            ),
        }
        try:
            server = DaemonServer(
                "test", self.name, handlers, state=lambda: f"n={self.count}", **self.kwargs
            )
            self.server = server
            with server:
                self.ready.set()
                server.serve(self.stop, poll_interval=0.02)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc
            self.ready.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served("alpha")
    yield s
    s.close()


def test_call_and_state(served: Served, shm_dir: Path) -> None:
    with ControlClient("test", "alpha", timeout=2.0) as client:
        reply = client.call("incr", by=2)
        assert reply["ok"] is True
        assert reply["count"] == 2
        assert reply["state"] == "n=2"
        ping = client.ping()
        assert ping["pid"] == os.getpid()
        assert "incr" in ping["commands"]
        with pytest.raises(CommandError, match="must be int") as info:
            client.call("incr", by="x")
        assert info.value.reply["state"] == "n=2"  # type: ignore[attr-defined]
        with pytest.raises(CommandError, match=r"unknown command 'zap'.*incr"):
            client.call("zap")
    assert served.count == 2


def test_socket_permissions(served: Served, shm_dir: Path) -> None:
    folder = shm_dir / "vampires"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    sock = folder / "test-alpha.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600


def test_control_folder_is_tightened(shm_dir: Path) -> None:
    folder = shm_dir / "vampires"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    s = Served("tight")
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        s.close()


def test_timeout_then_the_client_recovers(served: Served) -> None:
    with ControlClient("test", "alpha", timeout=2.0) as client:
        with pytest.raises(ControlTimeout, match=r"no reply to 'slow' within 0\.1 s"):
            client.request("slow", {"s": 0.5}, timeout=0.1)
        # the timed-out REQ was dropped: the next call works on a fresh socket
        assert client.call("incr", timeout=2.0)["count"] == 1


def test_second_server_is_refused(served: Served) -> None:
    with pytest.raises(DaemonAlreadyRunning, match="already running"):
        DaemonServer("test", "alpha", {}).open()


def test_not_running_and_stale(shm_dir: Path) -> None:
    with (
        ControlClient("logger", "vcam2", timeout=0.3) as client,
        pytest.raises(DaemonNotRunning, match="run vampires_preplog"),
    ):
        client.call("status")
    # a socket file left by a dead daemon (nobody holds its lock)
    folder = shm_dir / "vampires"
    folder.mkdir(mode=0o700)
    with zmq.Context() as ctx, ctx.socket(zmq.REP) as rep:
        rep.bind(f"ipc://{folder / 'test-ghost.sock'}")
        rep.linger = 0
        with (
            ControlClient("test", "ghost", timeout=0.3) as client,
            pytest.raises(DaemonNotRunning, match="died"),
        ):
            client.call("ping")
    (folder / "test-ghost.sock").touch()  # zmq removed it on close: fake a leftover
    assert not daemon_alive("test", "ghost")
    assert [d.name for d in discover("test", include_dead=True)] == ["ghost"]
    assert discover("test") == []
    s = Served("ghost")  # the stale socket is cleaned and replaced
    try:
        with ControlClient("test", "ghost") as client:
            assert client.call("ping")["ok"]
    finally:
        s.close()
    assert not (folder / "test-ghost.sock").exists()


def test_group_call_one_result_per_target(shm_dir: Path) -> None:
    a, b = Served("a"), Served("b")
    try:
        result = group_call("test", ["a", "b", "c"], "incr", {"by": 3}, timeout=2.0)
        assert [r.status for r in result] == ["ok", "ok", "not-running"]
        assert result["a"].reply is not None
        assert result["a"].reply["count"] == 3
        assert result["a"].state == "n=3"
        assert not result.ok
        assert result.skew is not None
        assert result.skew >= 0
        print(f"in-process group skew: {result.skew * 1e3:.3f} ms")  # noqa: T201
        bad = group_call("test", ["a", "b"], "incr", {"by": "x"}, timeout=2.0)
        assert [r.status for r in bad] == ["error", "error"]
        assert "must be int" in (bad["b"].error or "")
        found = discover("test")
        assert [(d.name, d.alive, d.state) for d in found] == [
            ("a", True, "n=3"),
            ("b", True, "n=3"),
        ]
    finally:
        a.close()
        b.close()
    assert a.count == b.count == 3


def test_group_call_bad_input() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        group_call("test", ["a", "a"], "ping")
    with pytest.raises(ConfigError, match="timeout"):
        group_call("test", ["a"], "ping", timeout=0)
    with pytest.raises(CommandError, match="JSON"):
        group_call("test", ["a"], "ping", {"x": object()})
    assert len(group_call("test", [], "ping")) == 0


def test_raw_garbage_over_the_socket(served: Served, shm_dir: Path) -> None:
    path = shm_dir / "vampires" / "test-alpha.sock"
    with zmq.Context() as ctx, ctx.socket(zmq.REQ) as req:
        req.linger = 0
        req.connect(f"ipc://{path}")
        for raw in [b"\x00\xff", b"[]", b'{"command": "incr", "args": {"by": 1.5}}']:
            req.send(raw)
            assert req.poll(2000)
            reply = json.loads(req.recv())
            assert reply["ok"] is False
            assert reply["state"] == "n=0"
        req.send_multipart([b'{"command": "incr"}', b"x"])
        assert req.poll(2000)
        assert "1 message frame" in json.loads(req.recv())["error"]
    assert served.count == 0


def test_curve_tcp(tmp_path: Path) -> None:
    keys = generate_keys(tmp_path / "keys")
    s = Served("remote", tcp="tcp://127.0.0.1:*", curve_dir=keys)
    try:
        assert s.server is not None
        endpoint = s.server.tcp_endpoint
        assert endpoint is not None
        with ControlClient("test", "remote", endpoint=endpoint, curve_dir=keys) as c:
            assert c.call("incr")["count"] == 1
        # a client with other keys is not admitted
        other = generate_keys(tmp_path / "other")
        (other / "server.key").write_bytes((keys / "server.key").read_bytes())
        with (
            ControlClient("test", "remote", endpoint=endpoint, curve_dir=other, timeout=0.3) as c,
            pytest.raises(ControlTimeout),
        ):
            c.call("incr")
        # ipc stays plain for the local commands
        with ControlClient("test", "remote") as c:
            assert c.call("incr")["count"] == 2
    finally:
        s.close()
    with pytest.raises(ConfigError, match="CURVE"):
        ControlClient("test", "remote", endpoint="tcp://127.0.0.1:1")


def test_errors_cross_the_socket_as_a_type_field(shm_dir: Path) -> None:
    def refuse(args: dict[str, Any]) -> dict[str, Any]:
        msg = "fps must be > 0"
        raise ConfigError(msg)

    stop = threading.Event()
    ready = threading.Event()

    def run() -> None:
        with DaemonServer("test", "typed", {"refuse": Command(func=refuse)}) as server:
            ready.set()
            server.serve(stop, poll_interval=0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(5.0)
        with ControlClient("test", "typed", timeout=2.0) as client:
            with pytest.raises(CommandError, match="test typed: ConfigError: fps") as info:
                client.call("refuse")
            assert info.value.remote_type == "ConfigError"
            assert info.value.remote_message == "fps must be > 0"
            assert info.value.reply is not None
            assert info.value.reply["error"] == "fps must be > 0"
            with pytest.raises(CommandError) as unknown:
                client.call("zap")
            assert unknown.value.remote_type == "CommandError"
        result = group_call("test", ["typed"], "refuse", timeout=2.0)
        assert result["typed"].error == "ConfigError: fps must be > 0"
    finally:
        stop.set()
        thread.join(5.0)
