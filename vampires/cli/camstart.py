"""``vampires camstart vcam1 [vcam2 ...] [--backend dcam[:ID] | --sim] [--mode MBI] ...``.

Starts camera daemons. Each camera runs detached (it survives the terminal);
the command returns once every daemon answers, printing one line per camera
with the backend it runs on. The backend is ``--backend``, else ``--sim``,
else the config file's ``[backends]`` entry for the camera, else the
simulator. Without ``--mode`` a camera comes back in the crop, readout mode
and exposure it last had.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from vampires.errors import VampiresError

__all__ = ["main"]

_DESCRIPTION = (
    "Start camera daemons. Each camera runs detached (it survives the terminal); the "
    "command returns once every daemon answers, one line per camera with the backend it "
    "runs on: --backend, else --sim, else the config file's [backends] entry for the "
    "camera, else the simulator. Without --mode a camera comes back in the crop, readout "
    "mode and exposure it last had."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Start camera daemons; 0 if all started."""
    from vampires.camera.daemon import add_camera_options
    from vampires.camera.remote import start_camera

    parser = argparse.ArgumentParser(prog="vampires camstart", description=_DESCRIPTION)
    parser.add_argument("cameras", nargs="+", help="camera names (vcam1 vcam2 vpupcam)")
    add_camera_options(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds to wait for each camera daemon to answer (default 20)",
    )
    args = vars(parser.parse_args(argv))
    failed = False
    for name in args.pop("cameras"):
        try:
            print(start_camera(name, **args).line())
        except VampiresError as exc:
            failed = True
            print(f"{name}: FAILED: {exc}")
    return 1 if failed else 0
