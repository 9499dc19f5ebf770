"""HWP-synchronised logging: one cube per half-wave-plate angle on both cameras.

What the HWP daemon does around every plate move: pause both loggers, move
the plate, resume for one cube, wait until both cubes are written. The angle
goes into each camera's ``RET-ANG1`` keyword, so every cube's header says
where the plate was.

Needs camera and logger daemons (``vampires camstart vcam1 vcam2 --sim``,
``vampires_preplog`` or ``vampires logger start``).

Run: ``python examples/hwp_sequence.py --angles 0 45 22.5 67.5``
"""

from __future__ import annotations

import argparse
import sys
import time

from vampires import Camera, LoggerGroup


def wait_idle(group: LoggerGroup, timeout: float) -> None:
    """Wait until every logger of ``group`` has finished its cube."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = group.status()
        if all(r.ok and r.reply["state"] == "idle" for r in replies):
            return
        time.sleep(0.1)
    msg = f"loggers {group.names} still saving after {timeout} s"
    raise TimeoutError(msg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--angles", type=float, nargs="+", default=[0.0, 45.0, 22.5, 67.5])
    parser.add_argument("--cameras", nargs="+", default=["vcam1", "vcam2"])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per cube")
    args = parser.parse_args()
    group = LoggerGroup(args.cameras)
    cameras = [Camera.connect(name) for name in args.cameras]
    for angle in args.angles:
        group.offc()  # pause: finish whatever is being filled
        wait_idle(group, args.timeout)
        for cam in cameras:  # "move" the plate: the angle goes into the next cube's header
            cam.set_keyword("RET-ANG1", angle)
        result = group.on(cubes=1)  # resume for exactly one cube
        skew = f"{result.skew * 1e3:.2f} ms" if result.skew is not None else "n/a"
        print(
            f"HWP {angle:6.2f} deg: "
            + ", ".join(f"{r.name} {r.status}" for r in result)
            + f" (start skew {skew})"
        )
        if not result.ok:
            return 1
        wait_idle(group, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
