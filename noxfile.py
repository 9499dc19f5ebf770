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


LINT_PATHS = ("vampires", "tests", "benchmarks", "examples")


@nox.session
def lint(session: nox.Session) -> None:
    """Format check, ruff, mypy --strict on the package and mypy on the tests.

    mypy reads the types of what the code imports: pytest (``vampires.testing``),
    PySide6 (the viewer) and the test tools, so the ``test`` extra is installed too.
    """
    session.install("-e", ".[lint,test]")
    session.run("ruff", "format", "--check", *LINT_PATHS)
    session.run("ruff", "check", *LINT_PATHS)
    session.run("mypy")
    session.run("mypy", "tests")


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
