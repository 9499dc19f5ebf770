"""The viewer in a real window (Xvfb): pixels on screen, status line, overlays, keys, links."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import free_port
from tests.view.viewhelpers import Writer, camera_cards, scene
from vampires.link.zmq import ZmqPublisher
from vampires.stream import Stream
from vampires.view.model import StreamView
from vampires.view.source import RemoteSource

pytestmark = pytest.mark.usefixtures("display")

SHAPE = (120, 200)


@pytest.fixture
def viewer_factory():
    from vampires.view.window import Viewer

    made = []

    def make(targets, **options):
        options.setdefault("size", (640, 420))
        viewer = Viewer(targets, **options)
        made.append(viewer)
        viewer.show()
        return viewer

    yield make
    for viewer in made:
        viewer.close()


def _shown(viewer, index=0):
    return lambda: viewer.views[index].rendered is not None


def _image_area(viewer, index=0):
    """The panel's pixels, minus the 2-pixel border of the layout."""
    return viewer.grab_panel(index).astype(np.int16)


def _static_stream(name, shape, *, cards=None, spots=()):
    stream = Stream.create(name, shape, np.uint16, nkeywords=200, exist_ok=True)
    if cards:
        stream.keywords.update(cards)
    stream.write(scene(shape, 1, spots), acquisition_time=time.time())
    return stream


def test_screen_shows_the_frames_and_changes_with_them(viewer_factory):
    with Writer("vcam1", SHAPE, fps=40, keywords=camera_cards("vcam1", "STANDARD")):
        viewer = viewer_factory(["vcam1"])
        assert viewer.wait_for(_shown(viewer))
        viewer.key(" ")  # pause: what is grabbed is the frame of this counter
        first_cnt0 = viewer.views[0].frame.cnt0
        before = _image_area(viewer)
        assert before.std() > 10  # not blank
        assert len(np.unique(before.reshape(-1, 3), axis=0)) > 2
        viewer.run_for(0.3)
        assert viewer.views[0].frame.cnt0 == first_cnt0  # paused: the camera went on, not us
        assert (before == _image_area(viewer)).all()
        assert "PAUSED" in viewer.status_text()
        viewer.key(" ")
        # the writer cycles through 4 frames: wait for one of the other three
        assert viewer.wait_for(lambda: (viewer.views[0].frame.cnt0 - first_cnt0) % 4 != 0)
        viewer.key(" ")
        after = _image_area(viewer)
        assert np.abs(after - before).sum() > 0  # the moving square moved


def test_status_line_matches_the_stream(viewer_factory):
    cards = camera_cards("vcam2", "MBI_REDUCED", data_type="FLAT")
    with _static_stream("vcam2", SHAPE, cards=cards) as stream:
        viewer = viewer_factory(["vcam2"])
        assert viewer.wait_for(lambda: f"#{stream.cnt0}" in viewer.status_text())
        text = viewer.status_text()
        for part in ("vcam2", "EXPTIME 2.5 ms", "DATA-TYP FLAT", "crop MBI_REDUCED",
                     "readout SLOW", "logger not running"):  # fmt: skip
            assert part in text, text
        stream.keywords["DATA-TYP"] = ("DARK", "Subaru-style exposure type")
        stream.write(scene(SHAPE, 2))
        assert viewer.wait_for(lambda: "DATA-TYP DARK" in viewer.status_text())
        assert f"#{stream.cnt0}" in viewer.status_text()


def test_mbi_overlays_sit_where_the_crop_table_puts_them(viewer_factory):
    from vampires.camera.table import load_camera_table
    from vampires.view.window import OUTLINE_RGB, WCS_RGB

    crop = load_camera_table("vcam1").crop("MBI")
    spots = tuple((h.x - crop.x0, h.y - crop.y0) for h in crop.hotspots)
    with _static_stream("vcam1", crop.shape, cards=camera_cards("vcam1", "MBI"), spots=spots):
        viewer = viewer_factory(["vcam1"], size=(900, 600))
        assert viewer.wait_for(_shown(viewer))
        viewer.run_for(0.2)
        fields = viewer.views[0].outlines()
        assert [f.label for f in fields] == [h.field for h in crop.hotspots]
        pixels = viewer.grab_panel()
        for field in fields:
            # the outline's left edge, half-way up, is drawn in the outline colour
            col, row = viewer.map_to_panel(field.x0, (field.y0 + field.y1) / 2)
            patch = pixels[row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3).astype(int)
            distance = np.abs(patch - np.array(OUTLINE_RGB)).sum(axis=1).min()
            assert distance < 60, (field.label, patch)
            # its centre is on the PSF put at the hotspot (white pixels around the
            # orange WCS marker, which the camera keywords put there too)
            col, row = viewer.map_to_panel(field.cx, field.cy)
            patch = pixels[row - 3 : row + 4, col - 3 : col + 4]
            col, row = viewer.map_to_panel(field.cx + 100, field.cy + 100)
            background = pixels[row - 3 : row + 4, col - 3 : col + 4]
            assert patch.min(axis=-1).max() > background.min(axis=-1).max() + 60, field.label
            # the grey image has R == B: an orange-ish pixel is the marker
            warm = patch[..., 0].astype(int) - patch[..., 2].astype(int)
            assert warm.max() > 60, field.label
            assert WCS_RGB[0] - WCS_RGB[2] > 60
        viewer.key("o")  # outlines off: the edge shows the image again
        viewer.run_for(0.1)
        pixels = viewer.grab_panel()
        col, row = viewer.map_to_panel(fields[0].x0, (fields[0].y0 + fields[0].y1) / 2)
        patch = pixels[row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3).astype(int)
        assert np.abs(patch - np.array(OUTLINE_RGB)).sum(axis=1).min() >= 60


def test_stretch_limits_and_colours_change_the_pixels(viewer_factory):
    with _static_stream("vcam1", SHAPE):
        viewer = viewer_factory(["vcam1"], percentiles=(0.0, 100.0))
        assert viewer.wait_for(_shown(viewer))
        linear = _image_area(viewer)
        viewer.set_settings(stretch="log")
        viewer.run_for(0.1)
        log = _image_area(viewer)
        assert log.mean() > linear.mean() + 10  # log lifts the faint background
        viewer.set_settings(stretch="linear", manual=(0.0, 150.0))
        viewer.run_for(0.1)
        assert viewer.views[0].rendered.lo == 0.0
        clipped = _image_area(viewer)
        assert clipped.mean() > log.mean()  # everything above 150 ADU is white
        viewer.key("l")  # back to percentile limits
        assert viewer.views[0].settings.manual is None
        viewer.key("c")  # next colour map: not grey any more
        viewer.run_for(0.1)
        coloured = _image_area(viewer)
        assert np.abs(coloured[..., 0] - coloured[..., 2]).max() > 50


def test_keys_help_zoom_cursor_and_save(viewer_factory, tmp_path):
    with _static_stream("vcam1", SHAPE, cards=camera_cards("vcam1", "STANDARD")) as stream:
        viewer = viewer_factory(["vcam1"], save_dir=tmp_path)
        assert viewer.wait_for(_shown(viewer))
        assert not viewer.help_visible
        assert viewer.key("h")
        viewer.run_for(0.1)
        assert viewer.help_visible
        assert "write the frame shown" in viewer._window.help.text()
        viewer.key("?")
        assert not viewer.help_visible
        assert not viewer.key("§")
        (x0, x1), _ = viewer.view_range()
        viewer.zoom(4.0)
        (z0, z1), _ = viewer.view_range()
        assert (z1 - z0) < (x1 - x0) / 2
        viewer.key("r")
        (r0, r1), _ = viewer.view_range()
        assert (r1 - r0) == pytest.approx(x1 - x0, rel=0.05)
        frame = stream.read()
        text = viewer.hover(10.5, 3.5)
        assert text.split() == ["x", "10", "y", "3", "value", f"{frame[3, 10]}"]
        viewer.key("w")
        saved = viewer.last_saved
        assert len(saved) == 1
        assert saved[0].parent == tmp_path
        assert saved[0].name.startswith("vcam1_")
        assert saved[0].stat().st_size > 0
        assert f"saved {saved[0]}" in viewer.views[0].status().text()
        viewer.key("b")  # bin 1, then 2: the rendered image shrinks
        viewer.key("b")
        assert viewer.views[0].rendered.factor == 2
        viewer.key("q")
        assert viewer.closed


def test_two_streams_side_by_side_and_remote_through_zmq(viewer_factory):
    port = free_port()
    with (
        Writer("vcam1", SHAPE, fps=40, keywords=camera_cards("vcam1", "STANDARD")),
        Writer("vcam2", (60, 80), fps=40, keywords=camera_cards("vcam2", "STANDARD")),
        ZmqPublisher("vcam2", bind=f"tcp://127.0.0.1:{port}", max_fps=20),
    ):
        viewer = viewer_factory(["vcam1", f"tcp://127.0.0.1:{port}/vcam2"], size=(900, 420))
        assert viewer.wait_for(lambda: _shown(viewer, 0)() and _shown(viewer, 1)())
        assert viewer.views[1].rendered.frame_shape == (60, 80)
        remote = viewer.status_text(1)
        assert f"tcp://127.0.0.1:{port}/vcam2" in remote
        assert "logger - (remote)" in remote
        assert viewer.wait_for(lambda: "DATA-TYP OBJECT" in viewer.status_text(1))
        assert _image_area(viewer, 1).std() > 10


def test_unknown_stream_waits_then_shows_and_follows_a_new_size(viewer_factory):
    viewer = viewer_factory(["vcam1"])
    assert viewer.wait_for(lambda: "waiting for stream vcam1" in viewer.notice_text())
    assert "is its writer running" in viewer.notice_text()
    assert "no frame yet" in viewer.status_text()
    with _static_stream("vcam1", SHAPE) as stream:
        assert viewer.wait_for(_shown(viewer))
        assert viewer.wait_for(lambda: viewer.notice_text() == "")
        assert viewer.views[0].rendered.frame_shape == SHAPE
        stream.destroy()
    assert viewer.wait_for(lambda: "vcam1" in viewer.status_text())
    with _static_stream("vcam1", (64, 300)):
        assert viewer.wait_for(lambda: viewer.views[0].rendered.frame_shape == (64, 300))
        viewer.run_for(0.1)
        (x0, x1), _ = viewer.view_range()
        assert x1 - x0 == pytest.approx(300, rel=0.1)  # the new frame fills the view
        assert _image_area(viewer).std() > 10


def test_publisher_gone_is_reported_and_reconnected(viewer_factory):
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    view = StreamView(RemoteSource(endpoint, "vcam1", silent_after=0.5))
    viewer = viewer_factory([view])
    with Writer("vcam1", SHAPE, fps=40), ZmqPublisher("vcam1", bind=f"{endpoint}", max_fps=20):
        assert viewer.wait_for(_shown(viewer))
    assert viewer.wait_for(lambda: "publisher gone? reconnecting" in viewer.notice_text())
    with Writer("vcam1", (40, 50), fps=40), ZmqPublisher("vcam1", bind=endpoint, max_fps=20):
        assert viewer.wait_for(lambda: viewer.views[0].rendered.frame_shape == (40, 50))
        assert viewer.wait_for(lambda: viewer.notice_text() == "")


def test_closing_leaves_no_semaphore_claimed(viewer_factory):
    with Writer("vcam1", SHAPE, fps=40, nsemaphores=1) as writer:
        viewer = viewer_factory(["vcam1"])
        assert viewer.wait_for(_shown(viewer))
        viewer.close()
        with writer.stream.reader() as reader:  # the only semaphore is free
            assert reader.index == 0


def test_bad_viewer_options_are_refused():
    from vampires.errors import ConfigError
    from vampires.view.window import Viewer

    with pytest.raises(ConfigError, match="one or more streams"):
        Viewer([])
    with pytest.raises(ConfigError, match="one or more streams"):
        Viewer("vcam1")
    with pytest.raises(ConfigError, match="bin"):
        Viewer(["vcam1"], bin=-1)
    with pytest.raises(ConfigError, match="max_fps"):
        Viewer(["vcam1"], max_fps=0)
    with pytest.raises(ConfigError, match="stretch"):
        Viewer(["vcam1"], stretch="cubic")


# ---------------------------------------------------------------- the command


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vampires", "view", *args]


@pytest.mark.integration
def test_command_shows_a_stream_and_writes_a_screenshot(tmp_path):
    png = tmp_path / "shot.png"
    with _static_stream("vcam1", SHAPE, cards=camera_cards("vcam1", "STANDARD")):
        result = subprocess.run(
            _command("vcam1", "--exit-after", "1.5", "--screenshot", str(png), "--max-fps", "5"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 1000


@pytest.mark.integration
def test_command_ctrl_c_closes_and_frees_everything():
    with Writer("vcam1", SHAPE, fps=40, nsemaphores=1) as writer:
        proc = subprocess.Popen(
            _command("vcam1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert proc.stderr is not None
            started = proc.stderr.readline()  # printed once the window exists
            assert "vampires view: vcam1 at <= 60 fps" in started, started
            time.sleep(0.5)  # a few frames (Ctrl-C at any moment is handled anyway)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        with writer.stream.reader() as reader:
            assert reader.index == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tcp://scexao5:5555"], "give the stream"),
        (["vcam1", "--cmap", "jet"], "colour map"),
        (["vcam1", "--limits", "5", "1"], "manual limits"),
        (["vcam1", "--dark", "/no/such/dark.fits"], "cannot read dark"),
    ],
)
def test_command_bad_input_is_one_line(args, message, capsys):
    from vampires.cli.view import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_command_without_a_display_says_so(monkeypatch, capsys):
    from vampires.cli.view import main

    for key in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(key, raising=False)
    assert main(["vcam1"]) == 2
    assert "no display" in capsys.readouterr().err


def test_command_stays_light_until_the_window_opens():
    code = (
        "import sys, vampires.cli.view; heavy = ('numba', 'astropy', 'PySide6', 'pyqtgraph'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    env = dict(os.environ)
    help_ = subprocess.run(
        _command("--help"), capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "tcp://HOST:PORT/vcam1" in help_


DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "viewer-mbi.png"


@pytest.mark.integration
def test_operator_guide_screenshot(viewer_factory, tmp_path):
    """The picture of docs/operators.md: vcam1 in MBI from the simulated camera.

    Run with ``VAMPIRES_UPDATE_SCREENSHOTS=1`` to rewrite the committed PNG.
    """
    from vampires.camera.camera import Camera

    with Camera("vcam1", crop="MBI", restore=False) as cam:
        cam.set_fps(60.0)  # PSF peaks below saturation
        cam.set_data_type("OBJECT")
        viewer = viewer_factory(
            ["vcam1"],
            stretch="asinh",
            colormap="inferno",
            percentiles=(1.0, 99.9),
            size=(1100, 640),
        )
        assert viewer.wait_for(lambda: "crop MBI" in viewer.status_text(), timeout=30)
        viewer.run_for(1.5)  # a few rate samples
        viewer.hover(1195.5 - 920, 1420.5 - 596)  # on the F670 PSF (hotspot - crop origin)
        shot = viewer.save_screenshot(tmp_path / "viewer-mbi.png")
        pixels = viewer.grab()
    assert pixels.std() > 20
    assert shot.stat().st_size > 10_000
    if os.environ.get("VAMPIRES_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        DOCS_SCREENSHOT.write_bytes(shot.read_bytes())
    assert DOCS_SCREENSHOT.is_file(), "run with VAMPIRES_UPDATE_SCREENSHOTS=1 once"


def test_qt_calls_do_not_drain_the_reference_count_of_none(viewer_factory):
    """PySide6 6.12.0 dropped a reference to None at every void call: on Python 3.11 a viewer
    then dies at exit ('none_dealloc'). pyproject keeps that version out; this catches it."""
    with _static_stream("vcam1", SHAPE):
        viewer = viewer_factory(["vcam1"])
        assert viewer.wait_for(_shown(viewer))
        panel = viewer._window.panels[0]
        before = sys.getrefcount(None)
        for _ in range(500):
            panel.update_status()  # QLabel.setText
            panel.graphics.viewport().repaint()  # paint overrides
            viewer._app.processEvents()
        assert sys.getrefcount(None) - before > -100


def test_forwarded_display_gets_the_reduced_rate(viewer_factory, monkeypatch):
    from vampires.view.model import FORWARDED_FPS, LOCAL_FPS

    with _static_stream("vcam1", SHAPE):
        assert viewer_factory(["vcam1"]).max_fps == LOCAL_FPS
        # the Qt application is already connected: only the rate choice reads DISPLAY now
        monkeypatch.setenv("DISPLAY", "localhost:10.0")
        viewer = viewer_factory(["vcam1"])
        assert viewer.max_fps == FORWARDED_FPS
        assert viewer.wait_for(_shown(viewer))
        assert viewer_factory(["vcam1"], max_fps=2.5).max_fps == 2.5
