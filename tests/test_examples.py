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
def test_scexao6_notebook_executes(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    temp = tmp_path / "kernel-tmp"  # the kernel's temp folder, to see what it leaves
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
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
    # issue 13 item 11: a 47 MB vampires-nb-* folder was left on every run
    assert not list(temp.glob("vampires-nb-*"))


@pytest.fixture
def logging_daemons(shm_dir: Path, tmp_path: Path):
    """Simulated vcam1 + vcam2 daemons and one logger daemon each (small cubes)."""
    from vampires.cli.main import main

    root = tmp_path / "night"
    assert main(["camstart", "vcam1", "vcam2", "--sim", "--mode", "ONEARC", "--fps", "200"]) == 0
    try:
        for cam in ("vcam1", "vcam2"):
            assert main(["logger", "start", cam, "-n", "20", "--root", str(root)]) == 0
        yield root
    finally:
        main(["logger", "stop", "vcam1", "vcam2"])
        main(["camstop", "vcam1", "vcam2"])


def _headers(root: Path, cam: str) -> list[dict]:
    from astropy.io import fits

    files = sorted(root.glob(f"*/{cam}/{cam}_*.fits"), key=lambda p: p.stat().st_mtime)
    return [dict(fits.getheader(p)) for p in files]


@pytest.mark.slow
def test_hwp_sequence_one_cube_per_angle(logging_daemons: Path, shm_dir: Path) -> None:
    out = _run("hwp_sequence.py", "--angles", "0", "45", "22.5", shm_dir=shm_dir)
    assert out.count("vcam1 ok, vcam2 ok") == 3, out
    for cam in ("vcam1", "vcam2"):
        headers = _headers(logging_daemons, cam)
        assert [h["RET-ANG1"] for h in headers] == [0.0, 45.0, 22.5]
        assert all(h["NAXIS3"] == 20 for h in headers)


@pytest.mark.slow
def test_sdi_sequence_swaps_filters_between_cube_sets(logging_daemons: Path, shm_dir: Path) -> None:
    out = _run("sdi_sequence.py", "--cubes", "2", "--iterations", "2", shm_dir=shm_dir)
    assert out.count("vcam1 ok, vcam2 ok") == 2, out
    cam1 = [h["FILTER02"] for h in _headers(logging_daemons, "vcam1")]
    cam2 = [h["FILTER02"] for h in _headers(logging_daemons, "vcam2")]
    assert cam1 == ["Halpha", "Halpha", "Ha-Cont", "Ha-Cont"]
    assert cam2 == ["Ha-Cont", "Ha-Cont", "Halpha", "Halpha"]


@pytest.mark.slow
def test_sdi_ctrl_c_once_finishes_the_current_cubes(logging_daemons: Path, shm_dir: Path) -> None:
    import signal
    import time

    env = {**os.environ, "MILK_SHM_DIR": str(shm_dir)}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "sdi_sequence.py"), "--cubes", "50", "--iterations", "9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "state 0" in first, first
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "finishing the current cubes" in out
    for cam in ("vcam1", "vcam2"):
        headers = _headers(logging_daemons, cam)
        assert headers, f"{cam}: no cube"
        assert len(headers) < 50
        assert all(h["NAXIS3"] == 20 for h in headers), [h["NAXIS3"] for h in headers]
