"""Developer sessions: tests, lint, bench, docs (``nox -s <name>``)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
PYTHON = ["3.11", "3.12"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (the README's test command)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Format check, ruff and mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("ruff", "format", "--check", "vampires", "tests", "benchmarks", "examples")
    session.run("ruff", "check", "vampires", "tests", "benchmarks", "examples")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark script and print one table of ratios."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")
