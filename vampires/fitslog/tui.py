"""The logger control screen (``vampires logctl``), our answer to ``milk-fpsCTRL``.

One row per logger daemon, refreshed every second, with three status lights
as operators know them from fpsCTRL (green = good):

- **D** daemon alive (answers on its control socket; red when its socket is
  stale or it does not answer),
- **R** run loop running (grey when the logger was killed or is in error),
- **S** saving (green while saving, yellow while preparing its buffers or finishing the last cube,
  grey when idle),

then cube size, cube count, frames, files, drops, current file and free disk.

Keys: ``space`` toggle saving, ``l`` last cube (stop after it), ``n`` next
cube, ``z`` edit cube size, ``c`` edit cube count, ``r`` restart (confirm),
``k`` kill (confirm), ``f`` edit the name filter, ``q`` quit.

The name filter works like ``FPS_FILTSTRING_NAME``: a logger is shown when the
filter is a substring of its name or of its fpsCTRL-style name
``streamFITSlog-<name>``, so ``FPS_FILTSTRING_NAME="streamFITSlog-vcam"``
keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label

if TYPE_CHECKING:
    from vampires._checks import ShmDir

__all__ = [
    "ControlPlaneBackend",
    "LogCtlApp",
    "LoggerBackend",
    "LoggerRow",
    "matches_filter",
    "run",
]

FPS_PREFIX = "streamFITSlog-"
_SAVING = frozenset({"saving"})
_FINISHING = frozenset({"finishing", "preparing"})  # yellow: saving soon, or ending
_DOWN = frozenset({"killed", "error", "stopped", "closed", "unknown"})


def matches_filter(name: str, pattern: str | None) -> bool:
    """Tell whether a logger is shown for the name filter ``pattern``.

    Parameters
    ----------
    name
        Logger (stream) name, e.g. ``vcam1``.
    pattern
        Substring; matched against ``name`` and ``streamFITSlog-<name>``
        (milk-fpsCTRL's FPS names). Empty or None shows everything.

    Returns
    -------
    bool
    """
    if not pattern:
        return True
    return pattern in name or pattern in FPS_PREFIX + name


@attrs.frozen(kw_only=True)
class LoggerRow:
    """What the screen shows for one logger.

    Attributes
    ----------
    name
        Stream name.
    alive
        The daemon answered.
    state
        Logger state (``idle``, ``saving`` ...) or the failure.
    cube_size, cubes, frames, files, dropped
        Counters; None when unknown.
    current_file
        File being written.
    disk_free
        Free bytes where files go.
    error
        Last error reported.
    """

    name: str
    alive: bool
    state: str
    cube_size: int | None = None
    cubes: int | None = None
    frames: int | None = None
    files: int | None = None
    dropped: int | None = None
    current_file: str | None = None
    disk_free: int | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        """The run loop runs (daemon alive and logger neither killed nor failed)."""
        return self.alive and self.state not in _DOWN

    @property
    def saving(self) -> bool:
        """The logger is saving (or armed to)."""
        return self.alive and self.state in _SAVING

    @property
    def finishing(self) -> bool:
        """The logger finishes its last cube."""
        return self.alive and self.state in _FINISHING


class LoggerBackend(Protocol):
    """Where the screen gets rows and sends commands (the control plane, or a fake)."""

    def rows(self) -> list[LoggerRow]:
        """Return one row per logger."""

    def command(self, name: str, command: str, args: dict[str, Any]) -> str | None:
        """Send a command; return None on success, else the error."""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ControlPlaneBackend:
    """Rows and commands through the control plane (discover + status)."""

    def __init__(self, *, timeout: float = 1.0, shm_dir: ShmDir = None) -> None:
        self.timeout = timeout
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None

    def rows(self) -> list[LoggerRow]:
        """Return one row per logger socket, dead ones included."""
        from vampires.control.client import discover, group_call

        infos = discover("logger", shm_dir=self._shm_dir, timeout=0.3, include_dead=True)
        alive = [i.name for i in infos if i.alive]
        status = {}
        if alive:
            result = group_call(
                "logger", alive, "status", timeout=self.timeout, shm_dir=self._shm_dir
            )
            status = {r.name: r for r in result}
        rows = []
        for info in infos:
            r = status.get(info.name)
            if r is None or r.reply is None:
                state = "no answer" if info.alive else "dead"
                err = r.error if r is not None else "daemon not answering (stale socket?)"
                rows.append(LoggerRow(name=info.name, alive=False, state=state, error=err))
                continue
            rep = r.reply
            st = rep.get("logger")
            if not isinstance(st, dict):
                st = {}
            rows.append(
                LoggerRow(
                    name=info.name,
                    alive=True,
                    state=str(rep.get("state", "unknown")),
                    cube_size=_int(rep.get("cube_size")),
                    cubes=_int(rep.get("cubes")),
                    frames=_int(st.get("frames")),
                    files=_int(st.get("files")),
                    dropped=_int(st.get("dropped")),
                    current_file=str(st["current_file"]) if st.get("current_file") else None,
                    disk_free=_int(rep.get("disk_free")),
                    error=str(st["error"]) if st.get("error") else None,
                )
            )
        return rows

    def command(self, name: str, command: str, args: dict[str, Any]) -> str | None:
        """Send ``command`` to logger ``name``; None on success, else the error."""
        from vampires.control.client import ControlClient
        from vampires.errors import ControlError

        try:
            with ControlClient("logger", name, timeout=5.0, shm_dir=self._shm_dir) as client:
                client.request(command, args)
        except ControlError as exc:
            return str(exc)
        return None


def _light(on: bool, *, colour: str = "green", off: str = "grey50", char: str = "●") -> Text:
    return Text(char, style=f"bold {colour if on else off}")


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _gb(nbytes: int | None) -> str:
    if nbytes is None or not math.isfinite(nbytes):
        return "-"
    return f"{nbytes / 1e9:.1f} GB"


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no question for destructive actions."""

    BINDINGS: ClassVar = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        """Question and two buttons."""
        with Grid(id="dialog"):
            yield Label(self.question, id="question")
            yield Button("Yes (y)", variant="error", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer with the button."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        """Answer with a key."""
        self.dismiss(value)


class AskScreen(ModalScreen[str | None]):
    """One-line input (cube size, cube count, filter)."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, value: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.value = value

    def compose(self) -> ComposeResult:
        """Prompt and input."""
        with Grid(id="dialog"):
            yield Label(self.prompt, id="question")
            yield Input(value=self.value, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return the text."""
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Return nothing."""
        self.dismiss(None)


_COLUMNS = (
    ("name", "LOGGER"),
    ("d", "D"),
    ("r", "R"),
    ("s", "S"),
    ("state", "STATE"),
    ("cube", "CUBE"),
    ("cubes", "CUBES"),
    ("frames", "FRAMES"),
    ("files", "FILES"),
    ("drops", "DROPS"),
    ("disk", "DISK FREE"),
    ("file", "CURRENT FILE"),
)


class LogCtlApp(App[None]):
    """The logger control screen.

    Parameters
    ----------
    backend
        Rows and commands; default: the control plane.
    name_filter
        Show only loggers matching (see :func:`matches_filter`).
    interval
        Seconds between refreshes.
    """

    TITLE = "vampires logctl"
    CSS = """
    #dialog { grid-size: 2; grid-gutter: 1 2; padding: 1 2; width: 64; height: auto;
              border: thick $warning; background: $surface; }
    #question { column-span: 2; width: 100%; }
    #answer { column-span: 2; }
    ConfirmScreen, AskScreen { align: center middle; }
    #message { height: 1; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("space", "toggle_save", "save on/off"),
        Binding("l", "last_cube", "last cube"),
        Binding("n", "next_cube", "next cube"),
        Binding("z", "cube_size", "cube size"),
        Binding("c", "cube_count", "cube count"),
        Binding("r", "restart", "restart"),
        Binding("k", "kill", "kill"),
        Binding("f", "filter", "filter"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        backend: LoggerBackend | None = None,
        *,
        name_filter: str | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.backend: LoggerBackend = backend if backend is not None else ControlPlaneBackend()
        self.name_filter = name_filter or ""
        self.interval = interval
        self.shown: list[LoggerRow] = []
        self.message = ""

    def compose(self) -> ComposeResult:
        """Header, table, message line, footer."""
        yield Header()
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True, id="loggers")
        for key, label in _COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Label("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        """First refresh, then periodic ones (in a thread: a hung daemon never freezes keys)."""
        self.refresh_rows()
        self.set_interval(self.interval, self._refresh_in_background)

    @work(thread=True, exclusive=True, group="refresh")
    def _refresh_in_background(self) -> None:
        try:
            rows = self.backend.rows()
        except Exception as exc:  # noqa: BLE001 - the screen must survive any backend hiccup
            self.call_from_thread(self._say, f"refresh failed: {exc}")
            return
        self.call_from_thread(self._show, rows)

    def _say(self, text: str) -> None:
        self.message = text
        self.query_one("#message", Label).update(text)

    def refresh_rows(self) -> None:
        """Fetch rows now and redraw the table (after a command, so it shows its effect)."""
        try:
            rows = self.backend.rows()
        except Exception as exc:  # noqa: BLE001 - the screen must survive any backend hiccup
            self._say(f"refresh failed: {exc}")
            return
        self._show(rows)

    def _show(self, all_rows: list[LoggerRow]) -> None:
        """Redraw the table (the cursor stays on its logger)."""
        rows = [r for r in all_rows if matches_filter(r.name, self.name_filter)]
        table = self.query_one("#loggers", DataTable)
        current = self.selected
        table.clear()
        for row in rows:
            table.add_row(*self._cells(row), key=row.name)
        self.shown = rows
        if current is not None and any(r.name == current.name for r in rows):
            table.move_cursor(row=[r.name for r in rows].index(current.name))
        self.sub_title = f"filter: {self.name_filter!r}" if self.name_filter else ""
        if not rows:
            self._say("no logger running: start them with vampires_preplog")

    @staticmethod
    def _cells(row: LoggerRow) -> tuple[object, ...]:
        alive = _light(row.alive, off="red")
        saving = _light(row.saving or row.finishing, colour="green" if row.saving else "yellow")
        state = Text(row.state, style="red" if row.error or not row.alive else "")
        drops = Text(_num(row.dropped), style="bold red" if row.dropped else "")
        return (
            row.name,
            alive,
            _light(row.running),
            saving,
            state,
            _num(row.cube_size),
            _num(row.cubes),
            _num(row.frames),
            _num(row.files),
            drops,
            _gb(row.disk_free),
            row.error or row.current_file or "-",
        )

    @property
    def selected(self) -> LoggerRow | None:
        """The logger under the cursor."""
        if not self.shown:
            return None
        table = self.query_one("#loggers", DataTable)
        index = min(max(table.cursor_row, 0), len(self.shown) - 1)
        return self.shown[index]

    def _send(self, command: str, args: dict[str, Any] | None = None) -> None:
        row = self.selected
        if row is None:
            self._say("no logger selected")
            return
        error = self.backend.command(row.name, command, args or {})
        self._say(f"{row.name}: {command} {'ok' if error is None else 'FAILED: ' + error}")
        self.refresh_rows()

    def action_toggle_save(self) -> None:
        """Save on when idle, off (truncating) when saving."""
        row = self.selected
        if row is not None:
            self._send("off" if row.saving or row.finishing else "on")

    def action_last_cube(self) -> None:
        """Stop after the current cube (milk's lastcubeON)."""
        self._send("offc")

    def action_next_cube(self) -> None:
        """Close the current cube now."""
        self._send("next")

    def _ask_int(self, prompt: str, key: str, current: int | None, low: int) -> None:
        def done(text: str | None) -> None:
            if text is None or not text.strip():
                return
            try:
                value = int(text)
            except ValueError:
                self._say(f"not an integer: {text!r}")
                return
            if value < low or value == 0:
                self._say(f"{key} must be {'-1 or ' if low < 0 else ''}>= 1 (got {value})")
                return
            self._send("set", {key: value})

        self.push_screen(AskScreen(prompt, "" if current is None else str(current)), done)

    def action_cube_size(self) -> None:
        """Edit frames per cube (applied at the next cube)."""
        row = self.selected
        if row is not None:
            self._ask_int(f"{row.name}: frames per cube", "cube_size", row.cube_size, 1)

    def action_cube_count(self) -> None:
        """Edit the number of cubes (-1 = until stopped)."""
        row = self.selected
        if row is not None:
            self._ask_int(
                f"{row.name}: number of cubes (-1 = until stopped)", "cubes", row.cubes, -1
            )

    def _confirm(self, question: str, then: Callable[[], None]) -> None:
        def done(yes: bool | None) -> None:
            if yes:
                then()
            else:
                self._say("cancelled")

        self.push_screen(ConfirmScreen(question), done)

    def action_restart(self) -> None:
        """Re-create the logger (new buffers), after confirmation."""
        row = self.selected
        if row is not None:
            self._confirm(
                f"Restart logger {row.name}? (a cube being written is truncated)",
                lambda: self._send("restart"),
            )

    def action_kill(self) -> None:
        """Kill the logger daemon, after confirmation."""
        row = self.selected
        if row is not None:
            self._confirm(
                f"Kill logger {row.name}? (run vampires_preplog to log again)",
                lambda: self._send("kill"),
            )

    def action_filter(self) -> None:
        """Edit the name filter."""

        def done(text: str | None) -> None:
            if text is not None:
                self.name_filter = text.strip()
                self.refresh_rows()

        self.push_screen(AskScreen("name filter (substring, empty = all)", self.name_filter), done)


def run(
    name_filter: str | None = None,
    *,
    interval: float = 1.0,
    backend: LoggerBackend | None = None,
) -> None:
    """Run the control screen in the terminal until ``q``.

    Parameters
    ----------
    name_filter
        Initial name filter.
    interval
        Seconds between refreshes.
    backend
        Default: the control plane.
    """
    LogCtlApp(backend, name_filter=name_filter, interval=interval).run()
