"""SDI sequence: n cubes, swap the differential filters, repeat.

What the SDI daemon does: both cameras log ``--cubes`` cubes, then the
differential filter wheel moves (cam1 and cam2 swap line and continuum
filters) and it starts again. Ctrl-C once finishes the current cubes and
stops; twice stops now (cubes truncated).

Needs camera and logger daemons (``vampires camstart vcam1 vcam2 --sim``,
``vampires_preplog`` or ``vampires logger start``).

Run: ``python examples/sdi_sequence.py --cubes 2 --iterations 3``
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from vampires import Camera, LoggerGroup
from vampires.camera.keywords import BenchState

FILTER_STATES = (("Halpha", "Ha-Cont"), ("Ha-Cont", "Halpha"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cubes", type=int, default=2, help="cubes per filter state")
    parser.add_argument("--iterations", type=int, default=2, help="filter states to visit")
    parser.add_argument("--cameras", nargs="+", default=["vcam1", "vcam2"])
    args = parser.parse_args()
    group = LoggerGroup(args.cameras)
    cameras = [Camera.connect(name) for name in args.cameras]
    interrupts = []

    def on_sigint(_sig: int, _frame: object) -> None:
        interrupts.append(time.time())
        if len(interrupts) == 1:
            print("Ctrl-C: finishing the current cubes (again to stop now)")
            group.offc()
        else:
            print("Ctrl-C again: stopping now")
            group.off()

    signal.signal(signal.SIGINT, on_sigint)
    for i in range(args.iterations):
        if interrupts:
            break
        filt1, filt2 = FILTER_STATES[i % 2]
        for cam in cameras:
            cam.set_bench(BenchState(diff_filter1=filt1, diff_filter2=filt2))
        result = group.on(cubes=args.cubes)
        print(
            f"state {i}: cam1 {filt1} / cam2 {filt2}: "
            + ", ".join(f"{r.name} {r.status}" for r in result)
        )
        if not result.ok:
            return 1
        while not all(r.ok and r.reply["state"] == "idle" for r in group.status()):
            time.sleep(0.1)
    return 130 if interrupts else 0


if __name__ == "__main__":
    sys.exit(main())
