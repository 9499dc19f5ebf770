"""`vampires demo`: the whole data path on simulated cameras, small and short."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from vampires.demo import DemoOptions, run_demo
from vampires.errors import ConfigError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_logs_verified_cubes_and_cleans_up(tmp_path: Path, shm_dir: Path) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    progress: list[Any] = []
    out = tmp_path / "night"
    summary = run_demo(
        DemoOptions(duration=3.0, crop="ONEARC", fps=50.0, cube_frames=40, out=out),
        on_progress=progress.append,
        interval=0.5,
    )
    assert summary.kept
    assert summary.out == out
    assert {c.name for c in summary.cameras} == {"vcam1", "vcam2"}
    for cam in summary.cameras:
        assert cam.files, f"{cam.name} wrote no cube"
        assert cam.verified == len(cam.files), [f for f in cam.files if not f.ok]
        # every frame the logger counted is in exactly one file
        assert sum(f.frames for f in cam.files) == cam.frames
        assert cam.folder is not None
        assert cam.folder.parent.parent == out
    mirror, zmq = summary.links
    assert mirror.frames > 0
    assert zmq.frames > 0
    assert progress
    assert progress[-1].stage == "stopped"
    # the demo's private shm folder is gone and ours was never touched
    assert os.environ["MILK_SHM_DIR"] == str(shm_dir)
    assert not list(shm_dir.iterdir())
    # pyzmq's zero-copy garbage collector is one thread per process, by design
    leftover = [
        t
        for t in threading.enumerate()
        if t.ident not in threads_before
        and t.is_alive()
        and type(t).__name__ != "GarbageCollectorThread"
    ]
    assert not leftover, leftover


def test_demo_temp_output_is_removed_unless_kept() -> None:
    from vampires.demo import discard_output

    summary = run_demo(DemoOptions(duration=1.0, crop="ONEARC", fps=20.0, cube_frames=10))
    assert not summary.kept
    assert summary.out.exists()
    discard_output(summary)
    assert not summary.out.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"duration": 0}, {"duration": -1}, {"fps": "fast"}, {"cube_frames": 0}, {"crop": ""}],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DemoOptions(**kwargs)  # type: ignore[arg-type]


def test_unknown_crop_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NOPE"):
        run_demo(DemoOptions(duration=1.0, crop="NOPE", out=tmp_path / "o"))


def test_cli_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vampires.cli.main import main

    status = main(
        [
            "demo",
            "--duration",
            "2",
            "--crop",
            "ONEARC",
            "--fps",
            "20",
            "--cube-frames",
            "10",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr().out
    assert "FITS Watcher" in out
    assert "logger vcam1" in out
    assert status in (0, 1)  # 1 only if a frame was dropped on an overloaded machine
    assert "verified" in out


def test_drops_are_explained_with_what_to_try(tmp_path: Path) -> None:
    from vampires.demo import CameraResult, DemoSummary, explain_drops
    from vampires.demo_view import render_summary

    clean = CameraResult(
        name="vcam1", frames=10, dropped=0, files=(), nbytes=0, seconds=1.0, folder=None
    )
    assert explain_drops(clean) == []
    cam = CameraResult(
        name="vcam2",
        frames=90,
        dropped=17,
        files=(),
        nbytes=int(50e6),
        seconds=1.0,
        folder=None,
        dropped_late=5,
        dropped_no_buffer=7,
        dropped_disk=4,
        error="disk full writing x.fits.tmp",
    )
    lines = explain_drops(cam, (3.5, 2))
    assert len(lines) == 4
    late, buffer, disk, other = lines
    assert "5 frames" in late
    assert "busy" in late
    assert "load average 3.5 on 2" in late
    assert "--fps 10" in late
    assert "7 frames" in buffer
    assert "50 MB/s" in buffer
    assert "faster disk" in buffer
    assert "4 frames" in disk
    assert "disk full" in disk
    assert "1 frames" in other
    summary = DemoSummary(
        out=tmp_path, kept=True, cameras=(clean, cam), links=(), start_skew=0.0,
        interrupted=False, load=(3.5, 2),
    )  # fmt: skip
    assert summary.explanations() == lines
    assert "faster disk" in str(render_summary(summary).caption)
