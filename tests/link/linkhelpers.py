"""Helpers for the link tests: link processes, deterministic frames (waits: tests.helpers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vampires.errors import StreamError
from vampires.stream import Stream


def expected_frame(cnt0: int, shape: tuple[int, ...]) -> np.ndarray:
    """A frame whose every pixel depends on cnt0 and its position (catches tears and shifts)."""
    n = int(np.prod(shape))
    idx = np.arange(n, dtype=np.uint64)
    values = (idx * np.uint64(2654435761) + np.uint64(cnt0) * np.uint64(40503)) >> np.uint64(7)
    return (values & np.uint64(0xFFFF)).astype(np.uint16).reshape(shape)


def open_when_ready(name: str, timeout: float = 10.0) -> Stream:
    # imported here: writer scripts import this module with only tests/link on their path
    from tests.helpers import wait_for

    def attempt() -> Stream | None:
        try:
            return Stream.open(name)
        except StreamError:
            return None

    stream: Stream = wait_for(attempt, timeout, f"stream {name}")
    return stream


class LinkProcess:
    """A ``vampires link ...`` process in the foreground, stopped at the end."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vampires", "link", *args],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """Ctrl-C, then SIGKILL if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._fh.close()
        return int(self.proc.returncode)

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")


def link_processes(tmp_path: Path) -> Iterator[Callable[..., LinkProcess]]:
    """Generator behind the ``link_process`` fixtures: start processes, stop them all."""
    started: list[LinkProcess] = []

    def start(*args: str) -> LinkProcess:
        proc = LinkProcess(list(args), tmp_path / f"link-{len(started)}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(OSError):
            proc.stop()
