"""The viewer window: pyqtgraph on Qt (PySide6), a thin front end over :class:`StreamView`.

Needs the ``viewer`` extra (``pip install 'vampires[viewer]'``). Everything
the window shows is computed by :class:`~vampires.view.model.StreamView`
(frames, pixels, overlays, status); this module only draws it and maps keys
and mouse to it. One timer drives the display at ``max_fps`` at most: each
tick takes the newest frame of every stream (none is queued) and draws it.

>>> viewer = Viewer(["vcam1", "vcam2"], stretch="log")
>>> viewer.run()            # blocks until the window is closed (or Ctrl-C)

In a notebook, start Qt's event loop with ``%gui qt`` and call
:meth:`Viewer.show` instead: the window then updates while cells run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vampires._checks import ShmDir, check_int
from vampires.errors import ConfigError, VampiresError
from vampires.view.model import KEY_HELP, StreamView, default_max_fps
from vampires.view.render import COLORMAPS, STRETCHES, RenderSettings, auto_factor

try:
    import pyqtgraph as pg
    from PySide6 import QtCore, QtGui, QtWidgets
except ImportError as exc:  # pragma: no cover - depends on the install
    _msg = (
        f"the viewer needs pyqtgraph and PySide6 ({exc}); install them with "
        "pip install 'vampires[viewer]'"
    )
    raise ConfigError(_msg) from exc

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.view.overlay import FieldOutline, WcsPoint

__all__ = ["OUTLINE_RGB", "WCS_RGB", "Viewer"]

logger = logging.getLogger(__name__)

#: Percentile limit presets the ``l`` key cycles through.
PERCENTILE_PRESETS = ((0.5, 99.5), (1.0, 99.0), (5.0, 95.0), (0.0, 100.0))
#: Binning choices of the ``b`` key (0 = auto: fit the window).
BIN_CHOICES = (0, 1, 2, 3, 4)
#: Colour of the MBI field outlines and labels.
OUTLINE_RGB = (0, 220, 255)
#: Colour of the WCS reference point markers.
WCS_RGB = (255, 170, 0)
_STATUS_PERIOD_S = 0.25


def _app() -> QtWidgets.QApplication:
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([])
    if not isinstance(app, QtWidgets.QApplication):  # a core application runs: no widgets
        msg = f"the viewer needs a QApplication (widgets), but a {type(app).__name__} is running"
        raise VampiresError(msg)
    return app


class _Image(pg.ImageItem):  # type: ignore[misc]
    """An image item that says when it was last painted (frames are drawn once each)."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.painted = True

    def paint(self, *args: Any) -> None:  # noqa: ANN401 - Qt painter arguments
        super().paint(*args)
        self.painted = True


class _Panel(QtWidgets.QWidget):
    """One stream: image, overlays, cursor read-out and status line."""

    def __init__(self, view: StreamView, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.bin_choice = 0
        self.show_outlines = True
        self.last_draw = 0.0
        self._overlay_key: object = None
        self._overlay_items: list[QtWidgets.QGraphicsItem] = []
        self._rect: tuple[int, int] | None = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.box = self.graphics.addViewBox(lockAspect=True, enableMenu=False)
        self.image = _Image()
        self.box.addItem(self.image)
        self.status_label = QtWidgets.QLabel(view.name)
        self.cursor_label = QtWidgets.QLabel("")
        mono = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        for label in (self.status_label, self.cursor_label):
            label.setFont(mono)
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setWordWrap(True)
        # two lines, always: the image area keeps its size whatever the status says
        lines = QtGui.QFontMetrics(mono).lineSpacing()
        self.status_label.setFixedHeight(2 * lines + 4)
        self.cursor_label.setFixedHeight(lines + 2)
        self.status_label.setObjectName("status")
        # what is wrong (waiting for a stream, publisher gone ...) over the image, in full
        self.notice = QtWidgets.QLabel("", self.graphics)
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(
            "QLabel#notice { background: rgba(20, 20, 60, 210); color: white; padding: 8px; }"
        )
        self.notice.hide()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, stretch=1)
        layout.addWidget(self.status_label)
        layout.addWidget(self.cursor_label)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)

    def factor_for(self, shape: tuple[int, int]) -> int:
        if self.bin_choice:
            return self.bin_choice
        size = self.graphics.size()
        return auto_factor(shape, (size.width(), size.height()))

    def draw(self) -> None:
        rendered = self.view.rendered
        if rendered is None:
            return
        height, width = rendered.frame_shape
        self.image.setImage(rendered.rgb, autoLevels=False, levels=None)
        self.image.painted = False
        if self._rect != (height, width):
            self.image.setRect(QtCore.QRectF(0, 0, width, height))
            self.box.autoRange(padding=0.0, items=[self.image])
            self._rect = (height, width)
        self._draw_overlays()

    def _draw_overlays(self) -> None:
        frame = self.view.frame
        keywords = frame.keywords if frame is not None else {}
        key = (
            self.show_outlines,
            self.view.shape,
            keywords.get("_CROP"),
            keywords.get("PRD-MIN1"),
            keywords.get("PRD-MIN2"),
            keywords.get("CRPIX1"),
        )
        if key == self._overlay_key:
            return
        self._overlay_key = key
        for item in self._overlay_items:
            self.box.removeItem(item)
        self._overlay_items = []
        if not self.show_outlines:
            return
        for field in self.view.outlines():
            self._add_outline(field)
        for point in self.view.wcs_points():
            self._add_wcs(point)

    def _add_outline(self, field: FieldOutline) -> None:
        rect = QtWidgets.QGraphicsRectItem(
            field.x0, field.y0, field.x1 - field.x0, field.y1 - field.y0
        )
        pen = pg.mkPen(OUTLINE_RGB, width=2)
        pen.setCosmetic(True)
        rect.setPen(pen)
        label = pg.TextItem(field.label, color=OUTLINE_RGB, anchor=(0.0, 0.0))
        label.setPos(field.x0 + 4, field.y1 - 4)
        for item in (rect, label):
            self.box.addItem(item)
            self._overlay_items.append(item)

    def _add_wcs(self, point: WcsPoint) -> None:
        marker = pg.ScatterPlotItem(
            [point.x], [point.y], symbol="+", size=9, pen=pg.mkPen(WCS_RGB, width=1),
            brush=None,
        )  # fmt: skip
        self.box.addItem(marker)
        self._overlay_items.append(marker)

    def _mouse_moved(self, pos: QtCore.QPointF) -> None:
        where = self.box.mapSceneToView(pos)
        hit = self.view.value_at(where.x(), where.y())
        self.cursor_label.setText(
            "" if hit is None else f"x {hit[0]:5d}  y {hit[1]:5d}  value {hit[2]:.6g}"
        )

    def update_status(self) -> None:
        status = self.view.status()
        self.status_label.setText(status.text(message=False))
        if status.message and status.message != self.notice.text():
            self.notice.setText(status.message)
            self.notice.setFixedWidth(max(100, self.graphics.width() - 20))
            self.notice.adjustSize()
            self.notice.move(10, 10)
        self.notice.setVisible(bool(status.message))


class _Window(QtWidgets.QMainWindow):
    def __init__(self, viewer: Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        central = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        self.panels = [_Panel(view) for view in viewer.views]
        for panel in self.panels:
            row.addWidget(panel)
        self.setCentralWidget(central)
        self.setWindowTitle("vampires view: " + " ".join(v.name for v in viewer.views))
        self.help = QtWidgets.QLabel(self._help_text(), central)
        self.help.setObjectName("help")
        self.help.setStyleSheet(
            "QLabel#help { background: rgba(0, 0, 0, 200); color: white; padding: 12px; }"
        )
        self.help.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.help.hide()

    @staticmethod
    def _help_text() -> str:
        width = max(len(k) for k, _ in KEY_HELP)
        lines = ["vampires view: keys", ""]
        lines += [f"{keys:<{width}}  {what}" for keys, what in KEY_HELP]
        return "\n".join(lines)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if not self._viewer.key(event.text(), event.key()):
            super().keyPressEvent(event)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._viewer._closed_by_window()
        super().closeEvent(event)


@attrs.frozen(kw_only=True)
class _Options:
    max_fps: float
    save_dir: Path


class Viewer:
    """A window showing one or more streams side by side, live.

    Parameters
    ----------
    targets
        Stream names (``vcam1``) and/or publishers (``tcp://host:port/vcam1``),
        or :class:`StreamView` objects.
    stretch, colormap
        Initial stretch (:data:`~vampires.view.render.STRETCHES`) and colour
        map (:data:`~vampires.view.render.COLORMAPS`).
    percentiles
        Percentile limits ``(low, high)``.
    limits
        Manual limits ``(low, high)`` in ADU (win over ``percentiles``).
    bin
        Display binning: 0 = fit the window, else the factor.
    sample
        Decimate instead of averaging when binning.
    saturation
        Saturation level in ADU (default: the pixel type's maximum).
    max_fps
        Most frames drawn per second per stream; None = 60, or 10 when the
        display is forwarded (``DISPLAY=localhost:10.0`` under ``ssh -X``).
    dark
        FITS file of a dark frame to subtract.
    save_dir
        Where ``w`` writes frames (default: the current folder).
    shm_dir
        Shm folder of local streams.
    size
        Initial window size ``(width, height)`` in screen pixels.

    Raises
    ------
    ConfigError
        No target, a bad target or option, or no display.
    """

    def __init__(
        self,
        targets: Sequence[str | StreamView],
        *,
        stretch: str = "linear",
        colormap: str = "grey",
        percentiles: tuple[float, float] = (0.5, 99.5),
        limits: tuple[float, float] | None = None,
        bin: int = 0,
        sample: bool = False,
        saturation: float | None = None,
        max_fps: float | None = None,
        dark: str | os.PathLike[str] | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        shm_dir: ShmDir = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        if isinstance(targets, str) or not targets:
            msg = "Viewer needs a list of one or more streams, e.g. ['vcam1', 'vcam2']"
            raise ConfigError(msg)
        check_int(bin, "bin (0 = fit the window, else a factor)", 0, 64)
        rate: object = default_max_fps(os.environ.get("DISPLAY")) if max_fps is None else max_fps
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1000:
            msg = f"max_fps must be a number of frames per second in (0, 1000] (got {max_fps!r})"
            raise ConfigError(msg)
        settings = RenderSettings(
            stretch=stretch,
            colormap=colormap,
            percentiles=percentiles,
            manual=limits,
            sample=sample,
            saturation=saturation,
        )
        folder = Path(save_dir) if save_dir is not None else Path.cwd()
        self._options = _Options(max_fps=float(rate), save_dir=folder)
        self.views: list[StreamView] = []
        try:
            for target in targets:
                if isinstance(target, StreamView):
                    target.settings = settings
                    self.views.append(target)
                else:
                    self.views.append(StreamView(target, settings=settings, shm_dir=shm_dir))
            if dark is not None:
                for view in self.views:
                    view.set_dark(dark)
        except VampiresError:
            self._close_views()
            raise
        if not any(os.environ.get(v) for v in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")):
            self._close_views()
            msg = "no display: set DISPLAY (ssh -X, or run under xvfb-run for tests)"
            raise ConfigError(msg)
        self._app = _app()
        self._window = _Window(self)
        for panel in self._window.panels:
            panel.bin_choice = bin
        self._window.resize(*(size or (min(1400, 700 * len(self.views)), 700)))
        self._timer = QtCore.QTimer()
        # poll twice per display period; a panel draws at most max_fps frames per second
        self._timer.setInterval(max(1, round(500.0 / self._options.max_fps)))
        self._period = 1.0 / self._options.max_fps
        self._timer.timeout.connect(self.tick)
        self._last_status = 0.0
        self._closed = False
        self.last_saved: list[Path] = []

    # ------------------------------------------------------------------ running

    @property
    def max_fps(self) -> float:
        """Most frames drawn per second per stream."""
        return self._options.max_fps

    def show(self) -> None:
        """Show the window and start the display timer (returns at once)."""
        self._window.show()
        self._timer.start()

    def run(self) -> int:
        """Show the window and run until it is closed, ``q`` or Ctrl-C.

        Ctrl-C and SIGTERM close the window like ``q`` does.

        Returns
        -------
        int
            0.
        """
        previous = {
            sig: signal.signal(sig, lambda *_: self._interrupted())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.show()
            if not self._closed:
                self._app.exec()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()
        return 0

    def _interrupted(self) -> None:
        self.close()
        self._app.quit()

    def run_for(self, seconds: float) -> None:
        """Process window events for ``seconds`` (scripts, tests), the timer running."""
        if not self._timer.isActive() and not self._closed:
            self.show()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._closed:
            self._app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Process events until ``predicate()`` is true or ``timeout`` seconds passed.

        Returns
        -------
        bool
            The last value of ``predicate()``.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or self._closed:
                return bool(predicate())
            self.run_for(0.02)
        return True

    def tick(self) -> None:
        """Take the newest frame of every stream and draw it (the timer calls this)."""
        for panel in self._window.panels:
            view = panel.view
            if not panel.image.painted:  # the screen has not shown the last frame yet:
                continue  # take the newest frame at the next tick instead of queueing work
            started = time.monotonic()
            if started - panel.last_draw < 0.9 * self._period:  # timer jitter
                continue
            try:
                fresh = view.update()
            except VampiresError as exc:  # shown over the image; the next frame may do
                view.message = str(exc)
                logger.warning("view %s: %s", view.name, exc)
                continue
            if fresh:
                wanted = panel.factor_for(view.shape or (1, 1))
                if wanted != view.settings.factor:  # first frame, new size, resized window
                    view.settings = attrs.evolve(view.settings, factor=wanted)
                panel.draw()
                panel.last_draw = started  # the period counts from frame to frame
        now = time.monotonic()
        if now - self._last_status > _STATUS_PERIOD_S:
            self._last_status = now
            for panel in self._window.panels:
                panel.update_status()

    # ------------------------------------------------------------------ keys

    def key(self, text: str, code: int = 0) -> bool:
        """Act on a key as the window does (see :data:`~vampires.view.model.KEY_HELP`).

        Parameters
        ----------
        text
            The character typed (``"s"``, ``" "``...).
        code
            Qt key code, for keys without text (Esc).

        Returns
        -------
        bool
            True when the key is one of the viewer's.
        """
        actions: dict[str, Callable[[], None]] = {
            "h": self.toggle_help,
            "?": self.toggle_help,
            " ": self.toggle_pause,
            "p": self.toggle_pause,
            "s": lambda: self._cycle("stretch", STRETCHES),
            "c": lambda: self._cycle("colormap", tuple(COLORMAPS)),
            "l": self._next_percentiles,
            "m": self._freeze_limits,
            "b": self._next_bin,
            "d": lambda: self._update(sample=not self.views[0].settings.sample),
            "t": lambda: self._update(show_saturation=not self.views[0].settings.show_saturation),
            "o": self._toggle_outlines,
            "w": self._write,
            "k": self._ask_dark,
            "K": lambda: self.set_dark(None),
            "r": self.reset_zoom,
            "0": self.reset_zoom,
            "q": self.close,
        }
        if code == QtCore.Qt.Key.Key_Escape:
            self.close()
            return True
        action = actions.get(text)
        if action is None:
            return False
        action()
        for panel in self._window.panels:
            panel.draw()
            panel.update_status()
        return True

    def _update(self, **changes: Any) -> None:  # noqa: ANN401
        for view in self.views:
            view.settings = attrs.evolve(view.settings, **changes)

    def set_settings(self, **changes: Any) -> None:  # noqa: ANN401
        """Change render settings of every stream (``stretch="log"``, ``manual=(0, 500)``...).

        Raises
        ------
        ConfigError
            An invalid value.
        """
        self._update(**changes)
        for panel in self._window.panels:
            panel.draw()

    def _cycle(self, field: str, choices: tuple[str, ...]) -> None:
        current = getattr(self.views[0].settings, field)
        self._update(**{field: choices[(choices.index(current) + 1) % len(choices)]})

    def _next_percentiles(self) -> None:
        current = self.views[0].settings.percentiles
        index = PERCENTILE_PRESETS.index(current) if current in PERCENTILE_PRESETS else -1
        preset = PERCENTILE_PRESETS[(index + 1) % len(PERCENTILE_PRESETS)]
        self._update(percentiles=preset, manual=None)

    def _freeze_limits(self) -> None:
        for view in self.views:
            if view.rendered is not None:
                view.settings = attrs.evolve(
                    view.settings, manual=(view.rendered.lo, view.rendered.hi)
                )

    def _next_bin(self) -> None:
        for panel in self._window.panels:
            index = BIN_CHOICES.index(panel.bin_choice) if panel.bin_choice in BIN_CHOICES else 0
            panel.bin_choice = BIN_CHOICES[(index + 1) % len(BIN_CHOICES)]
            if panel.view.shape is not None:
                panel.view.settings = attrs.evolve(
                    panel.view.settings, factor=panel.factor_for(panel.view.shape)
                )

    def _toggle_outlines(self) -> None:
        for panel in self._window.panels:
            panel.show_outlines = not panel.show_outlines

    def toggle_help(self) -> None:
        """Show or hide the keyboard help over the image."""
        help_ = self._window.help
        if help_.isVisible():
            help_.hide()
            return
        help_.adjustSize()
        help_.move(20, 20)
        help_.raise_()
        help_.show()

    @property
    def help_visible(self) -> bool:
        """True while the keyboard help is shown."""
        return self._window.help.isVisible()

    def toggle_pause(self) -> None:
        """Pause or resume the display of every stream (the streams go on)."""
        paused = not self.views[0].paused
        for view in self.views:
            view.paused = paused

    def reset_zoom(self) -> None:
        """Show the whole frame again."""
        for panel in self._window.panels:
            panel.box.autoRange(padding=0.0, items=[panel.image])

    def _write(self) -> None:
        try:
            self.save()
        except VampiresError as exc:
            for view in self.views:
                view.message = str(exc)

    def save(self, folder: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write the frame shown of every stream to ``<folder>/<stream>_<UT>.fits``.

        Parameters
        ----------
        folder
            Destination folder (default: the viewer's ``save_dir``).

        Returns
        -------
        list of Path

        Raises
        ------
        ConfigError
            No frame shown yet, or the folder does not exist.
        """
        where = Path(folder) if folder is not None else self._options.save_dir
        if not where.is_dir():
            msg = f"cannot save into {where}: not a folder"
            raise ConfigError(msg)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
        saved = [
            view.save_fits(where / f"{view.source.target.name}_{stamp}.fits") for view in self.views
        ]
        for view, path in zip(self.views, saved, strict=True):
            view.message = f"saved {path}"
        self.last_saved = saved
        return saved

    def _ask_dark(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self._window, "Dark frame", str(self._options.save_dir), "FITS (*.fits *.fit *.fts)"
        )
        if path:
            self.set_dark(path)

    def set_dark(self, path: str | os.PathLike[str] | None) -> None:
        """Subtract a dark (FITS file) from every stream; None stops subtracting.

        A dark that does not fit a stream's frames is reported on its status
        line and not used there.
        """
        for view in self.views:
            try:
                view.set_dark(path)
            except VampiresError as exc:
                view.message = str(exc)

    # ------------------------------------------------------------------ pictures

    def grab(self) -> NDArray[np.uint8]:
        """Return the window as it is on screen, ``(height, width, 3)`` uint8 RGB."""
        self._app.processEvents()
        image = self._window.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        width, height, stride = image.width(), image.height(), image.bytesPerLine()
        raw = np.frombuffer(image.constBits(), np.uint8, count=stride * height)
        return raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()

    def grab_panel(self, index: int = 0) -> NDArray[np.uint8]:
        """Return the image area of one stream's panel, ``(height, width, 3)`` uint8 RGB."""
        self._app.processEvents()
        image = (
            self._window.panels[index]
            .graphics.grab()
            .toImage()
            .convertToFormat(QtGui.QImage.Format.Format_RGB888)
        )
        width, height, stride = image.width(), image.height(), image.bytesPerLine()
        raw = np.frombuffer(image.constBits(), np.uint8, count=stride * height)
        return raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()

    def save_screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Write the window as a PNG file.

        Raises
        ------
        ConfigError
            The file cannot be written.
        """
        self._app.processEvents()
        dest = Path(path)
        if not self._window.grab().save(str(dest), "PNG"):
            msg = f"cannot write the screenshot {dest}"
            raise ConfigError(msg)
        return dest

    def status_text(self, index: int = 0) -> str:
        """Return the status line of one stream as the window shows it."""
        return self._window.panels[index].status_label.text()

    def notice_text(self, index: int = 0) -> str:
        """Return the notice shown over the image of one stream ("" when none)."""
        notice = self._window.panels[index].notice
        return notice.text() if notice.isVisible() else ""

    def cursor_text(self, index: int = 0) -> str:
        """Return the cursor read-out line of one stream."""
        return self._window.panels[index].cursor_label.text()

    def hover(self, x: float, y: float, index: int = 0) -> str:
        """Move the read-out to frame point ``(x, y)`` as the mouse would; return its text."""
        panel = self._window.panels[index]
        panel._mouse_moved(panel.box.mapViewToScene(QtCore.QPointF(x, y)))
        return panel.cursor_label.text()

    def view_range(self, index: int = 0) -> tuple[tuple[float, float], tuple[float, float]]:
        """Return the frame area shown, ``((x0, x1), (y0, y1))``."""
        (x0, x1), (y0, y1) = self._window.panels[index].box.viewRange()
        return (x0, x1), (y0, y1)

    def zoom(self, factor: float, index: int = 0) -> None:
        """Zoom about the centre of the area shown (factor > 1 zooms in)."""
        self._window.panels[index].box.scaleBy((1.0 / factor, 1.0 / factor))

    def map_to_panel(self, x: float, y: float, index: int = 0) -> tuple[int, int]:
        """Return the pixel of :meth:`grab_panel` showing frame point ``(x, y)``."""
        panel = self._window.panels[index]
        scene = panel.box.mapViewToScene(QtCore.QPointF(x, y))
        local = panel.graphics.mapFromScene(scene)
        return int(local.x()), int(local.y())

    # ------------------------------------------------------------------ closing

    def _close_views(self) -> None:
        for view in self.views:
            view.close()

    def _closed_by_window(self) -> None:
        self._timer.stop()
        self._closed = True
        self._close_views()

    def close(self) -> None:
        """Close the window and every source (idempotent); nothing stays claimed."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self._window.close()
        self._close_views()
        self._app.processEvents()

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._closed

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
