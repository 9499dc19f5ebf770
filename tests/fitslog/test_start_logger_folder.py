"""A logger is never started for a folder it could not write to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vampires.control.client import daemon_alive
from vampires.errors import ConfigError
from vampires.fitslog.remote import start_logger


@pytest.mark.parametrize("kind", ["dirname", "root"])
def test_unusable_folder_is_refused_before_spawning(kind: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder: dict[str, Any] = {kind: blocker / "sub"}
    with pytest.raises(ConfigError, match="cannot create the folder"):
        start_logger("vcam1", cube_size=10, **folder)
    assert not daemon_alive("logger", "vcam1")


def test_cli_preplog_reports_the_bad_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from vampires.cli.main import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    status = main(["logger", "start", "vcam1", "-n", "10", "-d", str(blocker / "sub")])
    assert status == 1
    assert "cannot create the folder" in capsys.readouterr().err


def test_datatype_old_t_option(capsys: pytest.CaptureFixture[str]) -> None:
    from vampires.cli.datatype import main

    # no camera daemon runs: the command must fail per camera, but -t is accepted
    status = main(["-t", "DARK", "-c", "1", "--timeout", "0.5"])
    out = capsys.readouterr()
    assert status == 1
    assert "vcam1" in out.out + out.err
    assert "unrecognized arguments" not in out.err
