"""The fitswatcher panel as text: the operating page's sample, flags, live loop."""

from __future__ import annotations

import datetime as dt
import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest
from rich.console import Console

from vampires.watch import FileSummary, Flag, FolderSummary, Watcher
from vampires.watch.tui import (
    STYLES,
    file_line,
    folder_line,
    format_duration,
    format_gb,
    format_mb,
    render_panel,
    run_live,
    title,
)

if TYPE_CHECKING:
    from rich.text import Text

# data-acquisition.md, "Watching FITS files" (the operating page), verbatim.
SAMPLE = """\
╭─ FITS Watcher - 2024-06-13T00:11:20.347365 ────────────────────────────────╮
│ /mnt/fuuu/20240611/vcam1/ - 8 FITS files (29 GB)                           │
│   vcam1_00:00:03.628172287.fits - (1000, 1104, 2228) 4919 MB | DARK scexao │
│   vcam1_23:59:49.294402958.fits - (249, 1104, 2228) 1225 MB | DARK scexao  │
│   vcam1_23:59:34.528434921.fits - (611, 1104, 2228) 3006 MB | DARK scexao  │
│                                                                            │
│ /mnt/fuuu/20240611/vcam2/ - 7 FITS files (29 GB)                           │
│   vcam2_00:00:05.715949178.fits - (1000, 1104, 2232) 4928 MB | DARK scexao │
│   vcam2_23:59:56.721432449.fits - (248, 1104, 2232) 1222 MB | DARK scexao  │
│   vcam2_23:59:35.200653725.fits - (581, 1104, 2232) 2863 MB | DARK scexao  │
╰────────────────────────────────────────────────────────────────────────────╯
"""
SAMPLE_NOW = dt.datetime(2024, 6, 13, 0, 11, 20, 347365)
T0 = 1_718_064_000.0  # 2024-06-11 00:00:00 UT (file mtimes; folder date of the sample)


def _capture(renderable: object, width: int = 100) -> Console:
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    console.print(renderable)
    return console


def _sample_night(root: Path, make_cube) -> None:
    """The sample's folders: the shown cubes with their shapes, plus older ones.

    The sample's totals (29 GB each) say what the hidden older files weigh in
    all: vcam2's 7 files are its 3 shown ones + 4 full 1000-frame cubes =
    28.73 GB -> "29 GB" (so GB is rounded, not floored, and comes from file
    sizes in decimal units); vcam1's 8 files fit with 4 full cubes + one
    100-frame cube = 29.32 GB.
    """
    night = root / "20240611"
    cams = {
        "vcam1": (2228, [1000] * 4 + [100], [(611, "23:59:34.528434921"),
                                              (249, "23:59:49.294402958"),
                                              (1000, "00:00:03.628172287")]),
        "vcam2": (2232, [1000] * 4, [(581, "23:59:35.200653725"),
                                     (248, "23:59:56.721432449"),
                                     (1000, "00:00:05.715949178")]),
    }  # fmt: skip
    for cam, (width, older, shown) in cams.items():
        for i, frames in enumerate(older):
            name = f"{cam}_23:{10 + i}:00.000000000.fits"
            make_cube(night / cam / name, (frames, 1104, width), mtime=T0 - 3000 + 60 * i)
        for i, (frames, stamp) in enumerate(shown):
            make_cube(night / cam / f"{cam}_{stamp}.fits", (frames, 1104, width), mtime=T0 + i)


def test_sample_screen_reproduced_exactly(tmp_path: Path, make_cube) -> None:
    _sample_night(tmp_path, make_cube)
    watcher = Watcher([str(tmp_path / "20240611" / "vcam*")], n=3, clock=lambda: T0 + 10)
    folders = watcher.scan()
    # the sample was taken on the summit: show the same folder paths
    shown = [attrs.evolve(f, path=Path("/mnt/fuuu/20240611") / f.path.name) for f in folders]
    console = _capture(render_panel(shown, now=SAMPLE_NOW))
    assert console.export_text(clear=False) == SAMPLE
    assert [f.n_files for f in folders] == [8, 7]
    assert [round(f.nbytes / 1e9, 2) for f in folders] == [29.32, 28.73]
    # cubes over 2 GB are flagged in colour only, so the sample's text is unchanged
    assert [[Flag.BIG in f.flags for f in folder.files] for folder in folders] == [
        [True, False, True],
        [True, False, True],
    ]
    assert "\x1b[1;33m4919 MB" in console.export_text(styles=True)


@pytest.mark.parametrize(
    ("frames", "width", "mb"),
    [(1000, 2228, "4919 MB"), (249, 2228, "1225 MB"), (611, 2228, "3006 MB"),
     (1000, 2232, "4928 MB"), (248, 2232, "1222 MB"), (581, 2232, "2863 MB")],
)  # fmt: skip
def test_sample_sizes_from_shapes(tmp_path: Path, make_cube, frames, width, mb) -> None:
    path = make_cube(tmp_path / "c.fits", (frames, 1104, width))
    assert format_mb(path.stat().st_size) == mb  # file size (header + padding included)
    assert format_mb(frames * 1104 * width * 2) == mb  # data only: same rounding


def test_size_and_duration_formats() -> None:
    assert format_gb(29_320_000_000) == "29 GB"
    assert format_gb(28_730_000_000) == "29 GB"  # rounded, not floored
    assert format_gb(1_225_000_000) == "1.2 GB"
    assert format_gb(0) == "0 GB"
    assert format_gb(14_400) == "<0.1 GB"
    assert format_mb(14_400) == "<0.1 MB"
    assert format_mb(5_500_000) == "5.5 MB"
    assert format_duration(45) == "45 s"
    assert format_duration(360) == "6 min"
    assert format_duration(9000) == "2.5 h"
    assert title(SAMPLE_NOW) == "FITS Watcher - 2024-06-13T00:11:20.347365"
    assert title(dt.datetime(2024, 6, 13)) == "FITS Watcher - 2024-06-13T00:00:00.000000"


def _spans(text: Text, style: str) -> list[str]:
    return [text.plain[s.start : s.end] for s in text.spans if s.style == style]


def test_flag_notes_and_colours() -> None:
    file = FileSummary(
        name="vcam1_00:00:01.000000000.fits",
        path=Path("/n/vcam1/x.fits"),
        shape=(250, 1104, 2228),
        nbytes=2_500_000_000,
        data_type="DARK",
        observer="scexao",
        dropped=12,
        flags=frozenset(Flag),
    )
    line = file_line(file)
    assert line.plain == (
        "  vcam1_00:00:01.000000000.fits - (250, 1104, 2228) 2500 MB | DARK scexao"
        "  ◂ 12 frames dropped  ◂ shape differs  ◂ DATA-TYP differs"
    )
    assert _spans(line, STYLES["big"]) == ["2500 MB"]
    assert _spans(line, STYLES["mismatch"])[:2] == ["(250, 1104, 2228)", "DARK"]
    assert _spans(line, STYLES["dropped"]) == ["  ◂ 12 frames dropped"]


def test_error_and_missing_keyword_lines() -> None:
    broken = FileSummary(name="b.fits", path=Path("/b.fits"), nbytes=1000, error="empty file")
    assert file_line(broken).plain == "  b.fits - empty file (<0.1 MB)"
    assert _spans(file_line(broken), STYLES["error"]) == ["empty file"]
    cut = FileSummary(
        name="c.fits", path=Path("/c.fits"), shape=(5, 4, 4), nbytes=4000,
        error="truncated: 4,000 of 14,880 bytes on disk",
    )  # fmt: skip
    assert file_line(cut).plain == (
        "  c.fits - (5, 4, 4) <0.1 MB | - -  ◂ truncated: 4,000 of 14,880 bytes on disk"
    )


def test_folder_lines() -> None:
    waiting_glob = FolderSummary(path=Path("/n/vcam*"), pattern="/n/vcam*", exists=False)
    assert folder_line(waiting_glob).plain == "/n/vcam* - waiting: no folder matches yet"
    waiting = FolderSummary(path=Path("/n/vcam2"), pattern="/n/vcam2", exists=False)
    assert folder_line(waiting).plain == "/n/vcam2/ - waiting: folder does not exist yet"
    error = FolderSummary(path=Path("/n/x"), pattern="/n/x", error="cannot list: Permission denied")
    assert folder_line(error).plain == "/n/x/ - cannot list: Permission denied"
    stalled = FolderSummary(
        path=Path("/n/vcam2"), pattern="/n/vcam*", n_files=3, nbytes=3_600_000_000,
        idle=400.0, expected_interval=20.0, flags=frozenset({Flag.STALLED}),
    )  # fmt: skip
    line = folder_line(stalled)
    assert line.plain == (
        "/n/vcam2/ - 3 FITS files (3.6 GB)  ◂ no new file for 7 min (expected every ~20 s)"
    )
    assert _spans(line, STYLES["stalled"]) == ["  ◂ no new file for 7 min (expected every ~20 s)"]
    assert _spans(line, STYLES["folder"]) == ["/n/vcam2/"]
    assert line.style == ""


def test_empty_folder_and_waiting_in_panel(tmp_path: Path) -> None:
    (tmp_path / "vcam1").mkdir()
    folders = Watcher([str(tmp_path / "vcam1"), str(tmp_path / "x*")]).scan()
    text = _capture(render_panel(folders, now=SAMPLE_NOW), width=200).export_text()
    assert f"│ {tmp_path}/vcam1/ - 0 FITS files (0 GB)" in text
    assert f"│ {tmp_path}/x* - waiting: no folder matches yet" in text


def test_run_live_refreshes_until_stopped(tmp_path: Path, make_cube) -> None:
    make_cube(tmp_path / "vcam1" / "a.fits", (3, 4, 5))
    watcher = Watcher([str(tmp_path / "vcam1")])
    stop = threading.Event()
    calls: list[int] = []

    def now() -> dt.datetime:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return SAMPLE_NOW

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True)
    run_live(watcher, interval=0.01, console=console, stop=stop, now=now)
    assert len(calls) == 3
    assert "FITS Watcher - 2024-06-13T00:11:20.347365" in out.getvalue()
    assert "a.fits - (3, 4, 5)" in out.getvalue()
