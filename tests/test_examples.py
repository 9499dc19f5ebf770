"""Every script in examples/ runs, as a user would run it, on simulated parts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.integration


def _run(script: str, *args: str, shm_dir: Path, timeout: float = 180) -> str:
    env = {**os.environ, "MILK_SHM_DIR": str(shm_dir)}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_autofocus_finds_the_simulated_best_focus(shm_dir: Path) -> None:
    out = _run("autofocus.py", "--best", "-0.2", shm_dir=shm_dir)
    found = float(re.search(r"best focus ([-+0-9.]+) mm", out).group(1))  # type: ignore[union-attr]
    assert found == pytest.approx(-0.2, abs=0.15), out
