"""Helpers shared by the test modules (import as ``from tests.helpers import ...``).

Test modules never import from each other: what two of them need lives here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll ``predicate`` until it returns a true value, and return that value.

    Fails the test with ``what`` in the message after ``timeout`` seconds.
    Polling (not sleeping a fixed time) keeps tests right on a busy machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (tiny race, fine for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
