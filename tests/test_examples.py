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


@pytest.mark.slow
def test_scexao6_notebook_executes(shm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(EXAMPLES / "scexao6.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    )
    client.execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "sidecar rows: 10 = NAXIS3: 10" in text, text
    assert "['F760', 'F720', 'F670', 'F610']" in text, text
