"""Rich renderings of the demo's progress and summary (one line per camera)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from vampires.demo import DemoProgress, DemoSummary

__all__ = ["render_progress", "render_summary"]


def render_progress(progress: DemoProgress) -> Table:
    """Render a progress snapshot: one row per logged camera, then the links.

    Parameters
    ----------
    progress
        A snapshot from :func:`vampires.demo.run_demo`.

    Returns
    -------
    Table
    """
    done = min(progress.elapsed / progress.duration, 1.0) if progress.duration else 1.0
    table = Table(
        title=f"{progress.stage} {progress.elapsed:5.1f} / {progress.duration:g} s "
        f"({100 * done:3.0f} %)",
        title_justify="left",
    )
    for column in ("camera", "frames", "cubes", "dropped", "MB written", "current file"):
        table.add_column(
            column, justify="left" if column in {"camera", "current file"} else "right"
        )
    for cam in progress.cameras:
        dropped = Text(str(cam.dropped), style="red bold" if cam.dropped else "green")
        table.add_row(
            cam.name,
            str(cam.frames),
            str(cam.files),
            dropped,
            f"{cam.written_bytes / 1e6:.0f}",
            cam.error or cam.current_file or "-",
        )
    table.caption = (
        f"TCP mirror vcam1 -> vcam1_sc6: {progress.mirror_frames} frames   "
        f"ZMQ vcam1: {progress.zmq_frames} frames"
    )
    return table


def render_summary(summary: DemoSummary) -> Table:
    """Render the final summary: frames, drops, MB/s and verified files per camera.

    Parameters
    ----------
    summary
        The result of :func:`vampires.demo.run_demo`.

    Returns
    -------
    Table
    """
    verdict = "[green]all cubes verified, nothing dropped[/]" if summary.ok else "[red]problems[/]"
    where = f"{summary.out} ({'kept' if summary.kept else 'removed at exit; --keep keeps it'})"
    table = Table(
        title=f"vampires demo: {verdict}",
        caption=f"files in {where}; logger start skew {summary.start_skew * 1e3:.2f} ms"
        + ("; interrupted by Ctrl-C" if summary.interrupted else ""),
        title_justify="left",
    )
    for column in ("what", "frames", "dropped", "MB/s", "verified", "notes"):
        table.add_column(column, justify="left" if column in {"what", "notes"} else "right")
    for cam in summary.cameras:
        bad = [f for f in cam.files if not f.ok]
        note = f"{bad[0].path.name}: {bad[0].fitsverify}" if bad else "fitsverify, sidecar ok"
        table.add_row(
            f"logger {cam.name}",
            str(cam.frames),
            Text(str(cam.dropped), style="red bold" if cam.dropped else "green"),
            f"{cam.mb_per_s:.0f}",
            f"{cam.verified}/{len(cam.files)}",
            note,
        )
    for link in summary.links:
        table.add_row(link.name, str(link.frames), f"{link.skipped} skipped", "", "", link.detail)
    why = summary.explanations()
    if why:
        table.caption = "\n".join([str(table.caption), *why])
    return table
