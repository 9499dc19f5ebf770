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
import logging
import sys
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

_FORWARD = ("mode", "readout", "tint", "fps", "trigger_stream", "data_type", "site", "backend")
_FLAGS = ("sim", "external_trigger", "deterministic", "fresh")


def _daemon_argv(name: str, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "vampires.camera.daemon", name]
    for key in _FORWARD:
        value = getattr(args, key)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    argv += [f"--{key.replace('_', '-')}" for key in _FLAGS if getattr(args, key)]
    return argv


def _precheck(name: str, args: argparse.Namespace) -> None:
    """Refuse what can be refused before a process is started."""
    from vampires.camera.backends.factory import check_backend, resolve_backend
    from vampires.camera.modes import parse_data_type, parse_readout_mode
    from vampires.camera.table import load_camera_table
    from vampires.config import Config

    spec = resolve_backend(name, Config.load(), backend=args.backend, sim=args.sim)
    if spec.kind != "sim" and (args.deterministic or args.trigger_stream is not None):
        from vampires.errors import ConfigError

        msg = f"--deterministic and --trigger-stream are simulator options (backend {spec})"
        raise ConfigError(msg)
    check_backend(spec)  # library installed, device seen: one line if not
    modes_log = logging.getLogger("vampires.camera.table")
    level = modes_log.level
    modes_log.setLevel(logging.ERROR)  # table warnings (HALFARC grid) go to the daemon log
    try:
        table = load_camera_table(name, site=args.site)
    finally:
        modes_log.setLevel(level)
    if args.mode is not None:
        table.crop(args.mode)
    if args.readout is not None:
        table.readout(parse_readout_mode(args.readout))
    if args.tint is not None:
        table.check_tint(args.tint)
    if args.fps is not None:
        # the highest rate depends on the crop the camera comes back in: with
        # --mode check it fully here, otherwise against the fastest crop (the
        # lower limit and non-numbers are refused either way)
        readout = args.readout if args.readout is not None else "FAST"
        crops = [table.crop(args.mode)] if args.mode is not None else list(table.crops.values())
        fastest = max(crops, key=lambda c: table.max_fps(c, readout))
        table.check_fps(args.fps, fastest, readout)
    if args.data_type is not None:
        parse_data_type(args.data_type)


def main(argv: Sequence[str] | None = None) -> int:
    """Start camera daemons; 0 if all started."""
    from vampires.camera.daemon import add_camera_options

    parser = argparse.ArgumentParser(prog="vampires camstart", description=_DESCRIPTION)
    parser.add_argument("cameras", nargs="+", help="camera names (vcam1 vcam2 vpupcam)")
    add_camera_options(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds to wait for each camera daemon to answer (default 20)",
    )
    args = parser.parse_args(argv)
    from vampires.camera.remote import RemoteCamera
    from vampires.control import spawn_daemon
    from vampires.control.spawn import default_log_path

    failed = False
    for name in args.cameras:
        try:
            _precheck(name, args)
            pid = spawn_daemon(
                _daemon_argv(name, args), kind="camera", name=name, timeout=args.timeout
            )
            with RemoteCamera(name) as cam:
                st = cam.status()
            crop = f"{st.crop.name} {st.crop.width}x{st.crop.height}"
            print(f"{name}: started (pid {pid}, {st.backend}) {crop} "
                  f"{st.readout_mode.value} {st.fps:.2f} Hz {st.data_type}; "
                  f"log {default_log_path('camera', name)}")  # fmt: skip
        except VampiresError as exc:
            failed = True
            print(f"{name}: FAILED: {exc}")
    return 1 if failed else 0
