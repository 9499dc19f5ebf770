"""The logger control screen, driven with textual's pilot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable

from vampires.cli import logctl
from vampires.fitslog.daemon import LoggerDaemon
from vampires.fitslog.policy import CubePolicy
from vampires.fitslog.tui import (
    ConfirmScreen,
    ControlPlaneBackend,
    LogCtlApp,
    LoggerRow,
    matches_filter,
)


class FakeBackend:
    def __init__(self, rows: list[LoggerRow]) -> None:
        self.rows_ = rows
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def rows(self) -> list[LoggerRow]:
        return list(self.rows_)

    def command(self, name: str, command: str, args: dict[str, Any]) -> str | None:
        self.sent.append((name, command, args))
        return None if command != "next" else "refused: not saving"


def _rows() -> list[LoggerRow]:
    return [
        LoggerRow(
            name="vcam1",
            alive=True,
            state="saving",
            cube_size=250,
            cubes=-1,
            frames=10,
            files=2,
            dropped=0,
            current_file="vcam1_00:00:01.000000000.fits",
            disk_free=int(5e11),
        ),
        LoggerRow(
            name="vcam2",
            alive=True,
            state="idle",
            cube_size=250,
            cubes=-1,
            frames=0,
            files=0,
            dropped=3,
            disk_free=int(5e11),
        ),
        LoggerRow(name="vpupcam", alive=False, state="dead", error="stale socket"),
    ]


def test_filter_like_fpsctrl() -> None:
    assert matches_filter("vcam1", "streamFITSlog-vcam")
    assert matches_filter("vcam1", "vcam")
    assert not matches_filter("vpupcam", "streamFITSlog-vcam")
    assert matches_filter("vpupcam", None)
    assert matches_filter("vpupcam", "")


def _cell(app: LogCtlApp, row: str, col: str) -> str:
    value = app.query_one("#loggers", DataTable).get_cell(row, col)
    return value.plain if isinstance(value, Text) else str(value)


def _style(app: LogCtlApp, row: str, col: str) -> str:
    value = app.query_one("#loggers", DataTable).get_cell(row, col)
    assert isinstance(value, Text)
    return str(value.style)


async def test_rows_lights_and_keys() -> None:
    backend = FakeBackend(_rows())
    app = LogCtlApp(backend, interval=60)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert [r.name for r in app.shown] == ["vcam1", "vcam2", "vpupcam"]
        assert _cell(app, "vcam1", "cube") == "250"
        assert "green" in _style(app, "vcam1", "s")
        assert "grey" in _style(app, "vcam2", "s")
        assert "red" in _style(app, "vpupcam", "d")
        assert "red" in _style(app, "vcam2", "drops")
        assert _cell(app, "vpupcam", "file") == "stale socket"
        await pilot.press("space")  # vcam1 is saving: off
        await pilot.press("down", "space")  # vcam2 idle: on
        await pilot.press("l", "n")
        assert backend.sent == [
            ("vcam1", "off", {}),
            ("vcam2", "on", {}),
            ("vcam2", "offc", {}),
            ("vcam2", "next", {}),
        ]
        assert "FAILED: refused" in app.message
        await pilot.press("z")
        await pilot.pause()
        app.screen.query_one("Input").value = ""  # type: ignore[attr-defined]
        await pilot.press("5", "0", "0", "enter")
        await pilot.press("c", "backspace", "backspace", "3", "enter")
        assert backend.sent[-2:] == [
            ("vcam2", "set", {"cube_size": 500}),
            ("vcam2", "set", {"cubes": 3}),
        ]
        await pilot.press("c", "backspace", "backspace", "0", "enter")
        assert "must be -1 or >= 1" in app.message
        assert len(backend.sent) == 6


async def test_destructive_keys_need_confirmation() -> None:
    backend = FakeBackend(_rows())
    app = LogCtlApp(backend, interval=60)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert backend.sent == []
        assert app.message == "cancelled"
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await pilot.press("k")
        await pilot.pause()
        await pilot.click("#yes")
        await pilot.pause()
        assert backend.sent == [("vcam1", "restart", {}), ("vcam1", "kill", {})]


async def test_filter_key_and_initial_filter() -> None:
    backend = FakeBackend(_rows())
    app = LogCtlApp(backend, name_filter="streamFITSlog-vcam", interval=60)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert [r.name for r in app.shown] == ["vcam1", "vcam2"]
        await pilot.press("f")
        await pilot.pause()
        app.screen.query_one("Input").value = "pup"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert [r.name for r in app.shown] == ["vpupcam"]
        await pilot.press("f")
        await pilot.pause()
        app.screen.query_one("Input").value = "zzz"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert app.shown == []
        assert "vampires_preplog" in app.message
        await pilot.press("space")  # nothing selected: no crash
        assert backend.sent == []


class _Recording:
    def __init__(self, *a: Any) -> None:
        self.saving = False
        self.closed = False

    def start(self) -> None:
        self.saving = True

    def pause(self, wait_for_cube: bool = False) -> None:
        self.saving = False

    def next_cube(self) -> None:
        pass

    def set_policy(self, policy: CubePolicy) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {
            "state": "saving" if self.saving else "idle",
            "frames": 0,
            "files": 0,
            "dropped": 0,
            "current_file": None,
        }

    def close(self, finish_cube: bool = True, timeout: float = 60.0) -> None:
        self.closed = True


@pytest.fixture
def live_daemon(tmp_path: Path) -> Iterator[LoggerDaemon]:
    daemon = LoggerDaemon(
        "vcam1", CubePolicy(frames_per_cube=50), root=tmp_path, factory=_Recording
    )
    stop = threading.Event()
    daemon.open()
    thread = threading.Thread(target=daemon.serve, args=(stop,), daemon=True)
    thread.start()
    yield daemon
    stop.set()
    thread.join(5.0)


async def test_against_a_real_daemon(live_daemon: LoggerDaemon) -> None:
    app = LogCtlApp(ControlPlaneBackend(), interval=60)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert [r.name for r in app.shown] == ["vcam1"]
        assert app.shown[0].cube_size == 50
        await pilot.press("space")
        assert app.shown[0].state == "saving"
        await pilot.press("space")
        assert app.shown[0].state == "idle"


def test_logctl_bad_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert logctl.main(["--interval", "0"]) == 2
    assert "--interval" in capsys.readouterr().err


def test_logctl_honours_fps_filtstring(monkeypatch: pytest.MonkeyPatch) -> None:
    import vampires.fitslog.tui as tui

    seen: list[tuple[str | None, float]] = []
    monkeypatch.setattr(tui, "run", lambda f, *, interval: seen.append((f, interval)))
    monkeypatch.setenv("FPS_FILTSTRING_NAME", "streamFITSlog-vcam")
    assert logctl.main([]) == 0
    assert logctl.main(["--filter", "vcam2", "--interval", "0.5"]) == 0
    monkeypatch.delenv("FPS_FILTSTRING_NAME")
    assert logctl.main([]) == 0
    assert seen == [("streamFITSlog-vcam", 1.0), ("vcam2", 0.5), (None, 1.0)]


async def test_periodic_refresh_in_background() -> None:
    import asyncio

    backend = FakeBackend(_rows()[:1])
    app = LogCtlApp(backend, interval=0.05)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert [r.name for r in app.shown] == ["vcam1"]
        backend.rows_ = _rows()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(app.shown) == 3:
                break
        assert [r.name for r in app.shown] == ["vcam1", "vcam2", "vpupcam"]

        def broken() -> list[LoggerRow]:
            msg = "control folder vanished"
            raise OSError(msg)

        backend.rows = broken  # type: ignore[method-assign]
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "refresh failed" in app.message:
                break
        assert "refresh failed: control folder vanished" in app.message
        assert len(app.shown) == 3  # the last good rows stay on screen
