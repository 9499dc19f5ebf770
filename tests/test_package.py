"""The package skeleton: imports, errors, config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import vampires
from vampires import errors
from vampires.config import Config, shm_dir


def test_errors_share_one_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.VampiresError), name


def test_errors_subclass_the_builtin_they_resemble() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.StreamTimeout, TimeoutError)
    assert issubclass(errors.StreamNotFoundError, FileNotFoundError)


def test_shm_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MILK_SHM_DIR", str(tmp_path))
    assert shm_dir() == tmp_path


def test_shm_dir_falls_back_like_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MILK_SHM_DIR")
    expected = Path("/milk/shm") if Path("/milk/shm").is_dir() else Path("/tmp")
    assert shm_dir() == expected


def test_config_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('data_root = "/from/toml"\narchive_root = "/arch"\n')
    monkeypatch.setenv("VAMPIRES_CONFIG", str(toml))
    assert Config.load().data_root == Path("/from/toml")
    monkeypatch.setenv("VAMPIRES_DATA_ROOT", "/from/env")
    assert Config.load().data_root == Path("/from/env")
    assert Config.load(data_root="/from/arg").data_root == Path("/from/arg")
    assert Config.load().archive_root == Path("/arch")


def test_config_bad_toml_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("data_root = [1, 2\n")
    monkeypatch.setenv("VAMPIRES_CONFIG", str(toml))
    with pytest.raises(errors.ConfigError, match=r"bad\.toml"):
        Config.load()


def test_config_wrong_type(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("data_root = 3\n")
    monkeypatch.setenv("VAMPIRES_CONFIG", str(toml))
    with pytest.raises(errors.ConfigError, match="data_root"):
        Config.load()


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="nope"):
        vampires.nope  # noqa: B018


def test_import_is_light() -> None:
    code = (
        "import sys, vampires, vampires.cli.main; "
        "print('numba' in sys.modules, 'astropy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_help_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    from vampires.cli.main import main

    assert main(["--help"]) == 0
    assert "stream" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
