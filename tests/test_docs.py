"""The documentation site builds with ``mkdocs build --strict`` (warnings are errors)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.mark.integration
def test_site_builds_strict(tmp_path: Path) -> None:
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(
            f"docs packages not installed ({', '.join(missing)}): "
            "pip install -e '.[docs]' to build the site"
        )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "index.html").is_file()
    assert (site / "api" / "stream" / "index.html").is_file()
    # a list item glued to an indented paragraph renders as literal "- " text
    # (issue 13 item 11: docs/operators.md, "Recovering after a crash")
    import re

    for page in site.rglob("*.html"):
        text = re.sub(r"<pre.*?</pre>", "", page.read_text(encoding="utf-8"), flags=re.S)
        for para in re.findall(r"<p>(.*?)</p>", text, flags=re.S):
            assert not re.search(r"\n- <strong>", para), f"{page}: list item rendered as text"


def test_docs_pages_are_in_the_nav() -> None:
    """Every page under docs/ is reachable from mkdocs.yml's nav (no orphan page)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert pages, "docs/ has no pages"
    orphans = [page for page in pages if page not in nav]
    assert not orphans, f"pages missing from mkdocs.yml nav: {orphans}"


# --- every command option the docs mention exists in that command's argparse ---------------

GROUPS = frozenset({"logger", "link", "stream"})
_SPAN = re.compile(r"`([^`\n]+)`")
_OPTION = re.compile(r"(?<![\w.-])(--?[A-Za-z][A-Za-z0-9-]*)")
_SHELL_SUBST = re.compile(r"\$\([^)]*\)")


def _console_scripts() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return dict(tomllib.load(fh)["project"]["scripts"])


def _help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str | None:
    """``<command> --help`` run in-process; None when the command does not exist."""
    scripts = _console_scripts()
    module, _, func = scripts[command[0]].partition(":")
    entry = getattr(importlib.import_module(module), func)
    try:
        entry([*command[1:], "--help"])
    except SystemExit as exc:
        out = capsys.readouterr().out
        return out if exc.code in (0, None) else None
    capsys.readouterr()
    return None


def _command_of(text: str, scripts: dict[str, str]) -> tuple[tuple[str, ...], str] | None:
    words = text.replace("\\|", "|").split()
    if not words or words[0] not in scripts:
        return None
    if words[0] == "vampires":
        if len(words) < 2 or words[1].startswith("-"):
            return None
        if words[1] in GROUPS and len(words) > 2 and not words[2].startswith(("-", "[")):
            command = tuple(words[:3])
        else:
            command = tuple(words[:2])
    else:
        command = (words[0],)
    return command, " ".join(words[len(command) :])


def _options(text: str) -> set[str]:
    return set(_OPTION.findall(_SHELL_SUBST.sub(" ", text))) - {"-h", "--help"}


def _doc_texts(page: str) -> list[str]:
    """Inline code spans and the command lines of shell code blocks of one page.

    ``bash``/``sh`` blocks: every line; ``console`` blocks: lines with a ``$ ``
    prompt (the others are output); other blocks (text, python, toml) are skipped.
    """
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    texts: list[str] = []
    block: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            block = None if block is not None else (stripped[3:].strip() or "bash")
            continue
        if block in ("bash", "sh"):
            texts.append(stripped)
        elif block == "console" and "$ " in stripped:
            texts.append(stripped.split("$ ", 1)[1])
        elif block is None:
            texts.extend(_SPAN.findall(line))
    return texts


@pytest.mark.parametrize(
    "page", ["operators.md", "migration.md", "examples.md", "index.md", "cameras.md"]
)
def test_documented_options_exist(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    scripts = _console_scripts()
    helps: dict[tuple[str, ...], set[str]] = {}
    bad: list[str] = []
    every_option: set[str] = set()
    spans = _doc_texts(page)
    for text in spans:
        found = _command_of(text, scripts)
        if found is None:
            continue
        command, rest = found
        if command not in helps:
            text_help = _help(command, capsys)
            if text_help is None:
                bad.append(f"{' '.join(command)}: no such command")
                helps[command] = set()
                continue
            helps[command] = _options(text_help)
        every_option |= helps[command]
        bad += [f"{' '.join(command)} {opt}" for opt in _options(rest) - helps[command]]
    if page == "operators.md":  # option-only spans (tables of options) of our commands
        for text in spans:
            if text.startswith("-") and _command_of(text, scripts) is None:
                bad += [opt for opt in _options(text) - every_option]
    assert helps, f"no command found in {page}"
    assert not bad, f"{page} mentions options the commands do not have: {sorted(set(bad))}"
