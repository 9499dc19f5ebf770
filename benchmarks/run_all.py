"""Run every benchmark script and print one table of ratios.

Each ``benchmarks/*_bench.py`` exposes ``run(quick: bool = False) -> list[dict]``
returning rows with the keys ``measure``, ``ours``, ``limit``, ``ratio`` and
``target``; the limit is measured in the same run (memcpy, raw write + fsync,
raw loopback socket), so ratios stay meaningful on a noisy shared machine.

Usage: ``python benchmarks/run_all.py [--quick] [--only NAME ...] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("measure", "ours", "limit", "ratio", "target")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def collect(quick: bool, only: list[str] | None) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(HERE.glob("*_bench.py")):
        name = path.stem.removesuffix("_bench")
        if only and name not in only:
            continue
        print(f"# running {path.name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend({"bench": name, **row} for row in _load(path).run(quick=quick))
        except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
            traceback.print_exc()
            rows.append({"bench": name, "measure": "FAILED", "ours": repr(exc)})
    return rows


def table(rows: list[dict]) -> str:
    head = ("bench", *COLUMNS)
    cells = [[_fmt(r.get(c, "")) for c in head] for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", nargs="*", help="bench names (e.g. stream logger)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    rows = collect(args.quick, args.only)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = platform.processor() or platform.machine()
    header = f"Benchmarks {stamp} on {platform.node()} ({machine})"
    text = f"{header}\n\n{table(rows)}\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 1 if any(r.get("measure") == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
