"""The ``vampires`` command: a dispatcher to one small module per subcommand.

Each subcommand lives in its own module with ``main(argv) -> int``; the module
is imported only when its subcommand runs, so start-up stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import MappingProxyType

from vampires.cli import pipe_safe

__all__ = ["SUBCOMMANDS", "main"]

#: subcommand -> (module, one-line help). Modules expose ``main(argv) -> int``.
SUBCOMMANDS = MappingProxyType(
    {
        "demo": ("vampires.cli.demo", "run the whole data path on simulated cameras"),
        "stream": ("vampires.cli.stream", "list, inspect, create and remove shm streams"),
        "camstart": ("vampires.cli.camstart", "start a camera daemon (simulated or real)"),
        "camstop": ("vampires.cli.camstop", "stop a camera daemon"),
        "logger": ("vampires.cli.logger", "start, list and drive FITS logger daemons"),
        "logctl": ("vampires.cli.logctl", "logger control screen (like milk-fpsCTRL)"),
        "link": ("vampires.cli.link", "TCP mirror and ZMQ publish/subscribe daemons"),
        "recover": ("vampires.cli.recover", "turn .tmp cubes left by a killed logger into FITS"),
        "watch": ("vampires.cli.fitswatcher", "live panel of FITS cubes (same as fitswatcher)"),
    }
)


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: vampires <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run 'vampires <command> --help' for the options of one command."]
    return "\n".join(lines)


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires <command> ...``.

    Parameters
    ----------
    argv
        Arguments after the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The subcommand's exit status (2 for an unknown command).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] in {"-V", "--version"}:
        from vampires import __version__

        print(f"vampires {__version__}")
        return 0
    entry = SUBCOMMANDS.get(args[0])
    if entry is None:
        print(f"vampires: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(entry[0])
    status: int = module.main(args[1:])
    return status
