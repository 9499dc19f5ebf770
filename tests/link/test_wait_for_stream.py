"""A link waiting for its stream says so now and then (issue 13 item 11)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vampires.link import _common
from vampires.link._common import Backoff, wait_for_stream
from vampires.link.status import LinkCounters
from vampires.stream import Stream

if TYPE_CHECKING:
    import pytest


def test_waiting_for_a_stream_is_said_again_now_and_then(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # 'vampires link tcp-send nosuch host:1' warned once, then waited silently for ever
    monkeypatch.setattr(_common, "WAIT_REMINDER_S", 0.2)
    counters = LinkCounters("tcp-send", "127.0.0.1:1", "nosuch")
    stop = threading.Event()
    found: list[Stream | None] = []
    with caplog.at_level(logging.WARNING, logger="vampires.link._common"):
        thread = threading.Thread(
            target=lambda: found.append(
                wait_for_stream("nosuch", None, stop, counters, backoff=Backoff(0.02, 0.05))
            )
        )
        thread.start()
        deadline = time.monotonic() + 20
        while sum("still waiting" in r.getMessage() for r in caplog.records) < 2:
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
        assert "no stream 'nosuch'" in (counters.error or "")
        Stream.create("nosuch", (2, 2), np.uint8).close()
        thread.join(20)
    assert found
    assert found[0] is not None
    found[0].close()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("tcp-send: waiting for stream nosuch (no stream 'nosuch'")
    assert "tcp-send: still waiting after" in messages[1]
