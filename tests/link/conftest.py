"""Fixtures shared by the link tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.link.linkhelpers import LinkProcess, link_processes


@pytest.fixture
def link_process(tmp_path: Path) -> Iterator[Callable[..., LinkProcess]]:
    """Start ``vampires link ...`` processes; every one is stopped after the test."""
    yield from link_processes(tmp_path)
