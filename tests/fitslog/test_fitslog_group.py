"""LoggerGroup against real logger daemons (spawned processes) on synthetic streams."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import wait_for
from vampires.control import DaemonServer, discover
from vampires.control.spawn import pid_alive
from vampires.errors import ConfigError, DaemonAlreadyRunning
from vampires.fitslog.remote import (
    LoggerGroup,
    describe,
    prepare_loggers,
    set_data_type,
    start_logger,
    suggest_frames,
)
from vampires.stream import Stream

pytestmark = pytest.mark.integration

CAMS = ("vcam1", "vcam2")


@pytest.fixture
def streams(shm_dir: Path) -> Iterator[list[Stream]]:
    made = [Stream.create(n, (16, 24), np.uint16, exist_ok=True) for n in CAMS]
    stop = threading.Event()

    def run() -> None:
        frame = np.zeros((16, 24), np.uint16)
        while not stop.is_set():
            now = time.time()
            for s in made:
                s.write(frame, acquisition_time=now)
            stop.wait(0.004)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield made
    stop.set()
    thread.join(5.0)
    for s in made:
        s.destroy()


@pytest.fixture
def loggers(streams: list[Stream], tmp_path: Path) -> Iterator[list[int]]:
    pids = [start_logger(n, cube_size=25, root=tmp_path) for n in CAMS]
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_group_commands_and_skew(loggers: list[int], tmp_path: Path) -> None:
    group = LoggerGroup.discover()
    assert group.names == CAMS
    with pytest.raises(DaemonAlreadyRunning):
        start_logger("vcam1", cube_size=25, root=tmp_path)
    first = group.status()
    assert [r.state for r in first] == ["idle", "idle"], list(describe(first))
    skews = []
    for _ in range(5):
        on = group.on()
        assert on.ok, list(describe(on))
        assert on.skew is not None
        skews.append(on.skew)
        off = group.off()
        assert off.ok, list(describe(off))
    print(f"logger start skew over 5 runs: {[f'{s * 1e3:.2f} ms' for s in skews]}")  # noqa: T201
    result = group.set(cube_size=10, cubes=2, timeout=1.5, folder=str(tmp_path / "exact"))
    assert result.ok, list(describe(result))
    assert [r.reply["cube_size"] for r in result if r.reply] == [10, 10]
    # let the truncated cubes of the on/off loop be written before the counted run
    wait_for(lambda: [r.state for r in group.status()] == ["idle", "idle"], 20)
    on = group.on()
    assert on.ok, list(describe(on))
    wait_for(lambda: [r.state for r in group.status()] == ["idle", "idle"], 20)
    for r in group.status():
        assert r.reply is not None
        assert r.reply["logger"]["files"] == 2, r.reply
    assert len(list((tmp_path / "exact").glob("*.fits"))) == 4  # both cameras, one folder
    got = group.get()
    assert [r.reply["timeout"] for r in got if r.reply] == [1.5, 1.5]
    lines = list(describe(group.next_cube()))
    assert lines[0].startswith("vcam1: next ok")
    killed = group.kill()
    assert killed.ok
    wait_for(lambda: not any(pid_alive(p) for p in loggers), 10)
    after = group.status()
    assert [r.status for r in after] == ["not-running", "not-running"]
    assert "run vampires_preplog" in (after["vcam1"].error or "")


def test_group_bad_input(shm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        LoggerGroup(["vcam1", "vcam1"])
    with pytest.raises(ConfigError, match="daemon name"):
        LoggerGroup(["../x"])
    with pytest.raises(ConfigError, match="frames_per_cube"):
        start_logger("vcam1", cube_size=0, root="/tmp")
    with pytest.raises(ConfigError, match="root"):
        start_logger("vcam1", cube_size=5)
    with pytest.raises(ConfigError, match="data type"):
        prepare_loggers(["vcam1"], frames=5, base="/tmp", data_type="SCIENCE")
    assert LoggerGroup.discover().names == ()
    assert suggest_frames(["vcam1"]) is None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
COMMANDS = st.sampled_from(["on", "off", "offc", "set", "get", "status", "next", "restart", "x"])


def test_fuzz_real_logger_daemon(loggers: list[int], shm_dir: Path, tmp_path: Path) -> None:
    path = shm_dir / "vampires" / "logger-vcam1.sock"
    with zmq.Context() as ctx, ctx.socket(zmq.REQ) as req:
        req.linger = 0
        req.connect(f"ipc://{path}")

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            raw=st.binary(max_size=80)
            | JSONISH.map(lambda v: json.dumps(v).encode())
            | st.builds(
                lambda c, a: json.dumps({"command": c, "args": a}).encode(),
                COMMANDS,
                # only malformed arguments: every command must refuse them
                JSONISH.filter(lambda a: not isinstance(a, dict) or bool(a)).map(
                    lambda a: a if not isinstance(a, dict) else {**a, "zz_bogus": 1}
                ),
            )
        )
        def check(raw: bytes) -> None:
            req.send(raw)
            assert req.poll(5000), f"no reply to {raw!r}"
            reply: dict[str, Any] = json.loads(req.recv())
            assert reply["ok"] is False, (raw, reply)
            assert reply["state"] == "idle"
            assert isinstance(reply["time"], float)

        check()
    group = LoggerGroup(["vcam1"])
    status = group.status()["vcam1"].reply
    assert status is not None
    assert status["logger"]["frames"] == 0
    assert status["cube_size"] == 25
    assert not any(tmp_path.rglob("*.fits"))


class _Camera:
    """A camera daemon stand-in answering set_data_type, in a thread."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.stop = threading.Event()
        self.server = DaemonServer("camera", "vcam1", {"set_data_type": self._set})
        self.server.open()
        self.thread = threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True)
        self.thread.start()

    def _set(self, args: dict[str, Any]) -> dict[str, Any]:
        self.values.append(args["data_type"])
        return {"data_type": args["data_type"]}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)
        self.server.close()


def test_data_type_prefers_the_camera_daemon(streams: list[Stream]) -> None:
    camera = _Camera()
    try:
        assert set_data_type("vcam1", "skyflat") == ("SKYFLAT", "camera daemon")
        assert camera.values == ["SKYFLAT"]
    finally:
        camera.close()
    assert set_data_type("vcam2", "Dark") == ("DARK", "stream keyword")
    assert streams[1].keywords["DATA-TYP"] == "DARK"
    assert suggest_frames(["vcam1", "vcam2", "vcam9"]) == round(1.2e9 / (16 * 24 * 2))
    assert discover("camera") == []
