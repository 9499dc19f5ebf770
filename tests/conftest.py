"""Shared fixtures: every test gets its own shm folder on a tmpfs."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Streams written by milk's C ImageStreamIO 2.00 (see its README).
FIXTURES_ISIO = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "imagestreamio"


def _tmpfs_root() -> Path:
    dev_shm = Path("/dev/shm")
    return dev_shm if dev_shm.is_dir() and os.access(dev_shm, os.W_OK) else Path("/tmp")


@pytest.fixture(autouse=True)
def shm_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private MILK_SHM_DIR on a tmpfs, removed after the test."""
    path = _tmpfs_root() / f"vampires-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    monkeypatch.setenv("MILK_SHM_DIR", str(path))
    monkeypatch.setenv("VAMPIRES_CONFIG", str(path / "no-config.toml"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def isio_fixtures(tmp_path: Path) -> Path:
    """Copies of the C-written stream fixtures (the originals are read-only)."""
    if not FIXTURES_ISIO.is_dir():
        pytest.skip(f"C ImageStreamIO fixtures not found at {FIXTURES_ISIO}")
    dest = tmp_path / "isio"
    shutil.copytree(FIXTURES_ISIO, dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest
