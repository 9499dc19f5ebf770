"""The README's Python example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.integration
def test_readme_python_example_runs(shm_dir: Path, tmp_path: Path):
    blocks = python_blocks()
    assert blocks, "README.md has no ```python block"
    for code in blocks:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "MILK_SHM_DIR": str(shm_dir), "HOME": str(tmp_path)},
        )
        assert done.returncode == 0, done.stderr
    assert list(shm_dir.glob("*.im.shm")) == []  # the example cleans up after itself
