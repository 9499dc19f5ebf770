"""Every command's --help reads as plain text (issue 13 item 11)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import pytest

from vampires.cli.main import SUBCOMMANDS
from vampires.cli.main import main as vampires_main

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
SUBACTIONS = {
    "stream": ["ls", "info", "create", "rm"],
    "logger": ["start", "run", "set", "status", "on"],
    "link": ["tcp-send", "tcp-recv", "zmq-pub", "zmq-sub", "status"],
}


def _help(
    capsys: pytest.CaptureFixture[str], call: Callable[[list[str]], object], argv: list[str]
) -> str:
    with pytest.raises(SystemExit) as info:
        call(argv)
    assert info.value.code == 0, argv
    return capsys.readouterr().out


def _helps(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = {}
    for script, target in SCRIPTS.items():
        if script == "vampires":
            continue
        module, func = target.split(":")
        out[script] = _help(capsys, getattr(import_module(module), func), ["--help"])
    for sub in SUBCOMMANDS:
        out[f"vampires {sub}"] = _help(capsys, vampires_main, [sub, "--help"])
        for action in SUBACTIONS.get(sub, []):
            out[f"vampires {sub} {action}"] = _help(capsys, vampires_main, [sub, action, "--help"])
    return out


def test_help_texts_are_plain_and_whole(capsys: pytest.CaptureFixture[str]) -> None:
    helps = _helps(capsys)
    assert len(helps) > 25
    for name, text in helps.items():
        assert "``" not in text, f"{name}: raw reST in --help"
        flat = " ".join(text.split())
        assert not re.search(r"wait for each(\s*\(|$|\s*-)", flat), f"{name}: cut sentence"
    # a footer lists only options the command has
    for name in ("vampires_startlog", "vampires_pauselog", "vampires_stoplog"):
        assert "-n/--frames" not in helps[name], name
    assert "-n/--frames" in helps["vampires_preplog"]
    # one wording for the cameras everywhere
    for name in ("vampires_startlog", "vampires_datatype", "get_crop", "vampires_preplog"):
        assert "1, 2, -1 or both" in " ".join(helps[name].split()), name
        assert "-1 = both" not in helps[name], name
