"""The camera daemon: one process owning a :class:`Camera`, answering the control plane.

``python -m vampires.camera.daemon vcam1 --sim [--mode MBI] ...`` runs in the
foreground; ``vampires camstart`` starts it detached (``spawn_daemon``) and
returns once it answers. Commands (JSON on
``ipc://$MILK_SHM_DIR/vampires/camera-<name>.sock``):

=====================  =======================================  ======================
command                arguments                                reply
=====================  =======================================  ======================
``status``                                                      ``status`` (dict)
``set_crop``           ``name`` (str) or ``mode`` (crop dict)   ``crop`` (dict)
``set_tint``           ``tint`` (float, s)                      ``tint``, ``fps``
``set_fps``            ``fps`` (float, Hz)                      ``tint``, ``fps``
``set_readout_mode``   ``mode`` (``FAST``/``SLOW``)             ``mode``, ``fps``
``set_external_trigger`` ``enable`` (bool)                      ``enable``, ``fps``
``set_data_type``      ``data_type`` (str)                      ``data_type``
``set_keyword``        ``name`` (str), ``value`` (int/float/str/bool)
``bench``                                                       ``bench`` (dict)
``set_bench``          fields of :class:`BenchState`
``trigger``                                                     one software trigger
``start`` / ``pause``                                           resume / pause acquisition
``stop``                                                        deprecated name of ``pause``
``shutdown``                                                    stops camera and daemon
=====================  =======================================  ======================

Refused arguments come back as ``ok: false`` with ``"error_type": "ConfigError"``;
:class:`~vampires.camera.remote.RemoteCamera` turns them back into exceptions.
SIGTERM / SIGINT / SIGHUP stop the daemon cleanly (camera stopped, stream file kept;
see :mod:`vampires.control.entry`).
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from typing import Any

import attrs

from vampires.camera.camera import Camera
from vampires.camera.keywords import BenchState
from vampires.camera.modes import CropMode
from vampires.camera.table import load_camera_table
from vampires.config import Config
from vampires.errors import ConfigError, VampiresError

__all__ = ["build_parser", "handlers", "main"]

logger = logging.getLogger(__name__)


def handlers(camera: Camera, stop: threading.Event) -> dict[str, Any]:
    """Build the control-plane commands of a camera daemon.

    Parameters
    ----------
    camera
        The camera the daemon owns.
    stop
        Set by ``shutdown``.

    Returns
    -------
    dict
        Command name -> :class:`vampires.control.Command`.
    """
    from vampires.control import Arg, Command
    from vampires.control.protocol import ArgType

    def status(a: dict[str, Any]) -> dict[str, Any]:
        return {"status": camera.status().to_dict()}

    def set_crop(a: dict[str, Any]) -> dict[str, Any]:
        if ("name" in a) == ("mode" in a):
            msg = "set_crop: give exactly one of 'name' (a crop name) or 'mode' (a crop dict)"
            raise ConfigError(msg)
        crop = a["name"] if "name" in a else CropMode.from_dict(a["mode"])
        return {"crop": camera.set_crop(crop).to_dict()}

    def set_tint(a: dict[str, Any]) -> dict[str, Any]:
        camera.set_tint(a["tint"])
        return {"tint": camera.tint, "fps": camera.fps}

    def set_fps(a: dict[str, Any]) -> dict[str, Any]:
        camera.set_fps(a["fps"])
        return {"tint": camera.tint, "fps": camera.fps}

    def set_readout_mode(a: dict[str, Any]) -> dict[str, Any]:
        return {"mode": camera.set_readout_mode(a["mode"]).value, "fps": camera.fps}

    def set_external_trigger(a: dict[str, Any]) -> dict[str, Any]:
        return {"enable": camera.set_external_trigger(a["enable"]), "fps": camera.fps}

    def set_data_type(a: dict[str, Any]) -> dict[str, Any]:
        return {"data_type": camera.set_data_type(a["data_type"])}

    def set_keyword(a: dict[str, Any]) -> dict[str, Any]:
        extra = set(a) - {"name", "value"}
        if "name" not in a or "value" not in a or extra:
            msg = "set_keyword: needs exactly 'name' and 'value'"
            raise ConfigError(msg)
        camera.set_keyword(a["name"], a["value"])
        return {"name": a["name"], "value": a["value"]}

    def set_bench(a: dict[str, Any]) -> dict[str, Any]:
        try:
            bench = attrs.evolve(camera.bench, **a)
        except TypeError as exc:
            msg = f"set_bench: unknown field ({exc}); fields: {list(attrs.fields_dict(BenchState))}"
            raise ConfigError(msg) from exc
        camera.set_bench(bench)
        return {"bench": attrs.asdict(camera.bench)}

    def bench(a: dict[str, Any]) -> dict[str, Any]:
        return {"bench": attrs.asdict(camera.bench)}

    def trigger(a: dict[str, Any]) -> dict[str, Any]:
        camera.trigger()
        return {}

    def start(a: dict[str, Any]) -> dict[str, Any]:
        camera.start()
        return {"running": camera.running}

    def pause(a: dict[str, Any]) -> dict[str, Any]:
        camera.pause()
        return {"running": camera.running}

    def shutdown(a: dict[str, Any]) -> dict[str, Any]:
        stop.set()
        return {"stopping": True}

    kinds: dict[str, ArgType] = {"bool": "bool", "float": "float", "str": "str"}
    bench_args = {
        f.name: Arg(type=kinds[str(getattr(f.type, "__name__", f.type))])
        for f in attrs.fields(BenchState)
    }
    return {
        "status": Command(func=status, help="camera status"),
        "set_crop": Command(
            func=set_crop,
            args={"name": Arg(type="str", help="crop name"), "mode": Arg(type="str")},
            help="change crop (re-creates the stream if the size changes)",
            strict=False,
        ),
        "set_tint": Command(
            func=set_tint, args={"tint": Arg(type="float", required=True, help="[s]")}
        ),
        "set_fps": Command(
            func=set_fps, args={"fps": Arg(type="float", required=True, help="[Hz]")}
        ),
        "set_readout_mode": Command(
            func=set_readout_mode, args={"mode": Arg(type="str", required=True, help="FAST|SLOW")}
        ),
        "set_external_trigger": Command(
            func=set_external_trigger, args={"enable": Arg(type="bool", required=True)}
        ),
        "set_data_type": Command(
            func=set_data_type, args={"data_type": Arg(type="str", required=True)}
        ),
        "set_keyword": Command(func=set_keyword, help="user keyword (name, value)", strict=False),
        "bench": Command(func=bench, help="simulated bench state (read)"),
        "set_bench": Command(func=set_bench, args=bench_args, help="simulated bench state"),
        "trigger": Command(func=trigger, help="one software trigger"),
        "start": Command(func=start, help="resume acquisition"),
        "pause": Command(func=pause, help="pause acquisition (daemon keeps running)"),
        "stop": Command(func=pause, help="deprecated name of pause"),
        "shutdown": Command(func=shutdown, help="stop the camera and exit"),
    }


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser shared by the daemon and ``vampires camstart``."""
    parser = argparse.ArgumentParser(
        prog="python -m vampires.camera.daemon", description="Run one camera daemon."
    )
    parser.add_argument("camera", help="camera name (vcam1, vcam2, vpupcam)")
    add_camera_options(parser)
    return parser


def add_camera_options(parser: argparse.ArgumentParser) -> None:
    """Add the camera start-up options to ``parser``."""
    parser.add_argument(
        "--sim", action="store_true", help="simulated backend (the default without a config entry)"
    )
    parser.add_argument(
        "--backend",
        metavar="KIND[:DEVICE]",
        help="sim, dcam[:INDEX|SERIAL] or genicam[:ID|SERIAL|ADDRESS|INDEX] "
        "(default: the config file's [backends] entry, else sim)",
    )
    parser.add_argument("--mode", "--crop", dest="mode", help="crop at start (default: last used)")
    parser.add_argument("--readout", help="readout mode FAST or SLOW")
    parser.add_argument("--tint", type=float, help="exposure [s]")
    parser.add_argument("--fps", type=float, help="frame rate [Hz]")
    parser.add_argument("--external-trigger", action="store_true", help="start in external trigger")
    parser.add_argument(
        "--trigger-stream", help="shared trigger stream for simulated external trigger"
    )
    parser.add_argument(
        "--deterministic", action="store_true",
        help="frames with pixel i = (i*7 + cnt0) mod 65536 (simulator; for byte checks)",
    )  # fmt: skip
    parser.add_argument("--data-type", help="DATA-TYP at start (default: last used)")
    parser.add_argument("--site", help="site TOML overriding the camera table")
    parser.add_argument("--fresh", action="store_true", help="ignore the saved settings")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the camera daemon in the foreground until ``shutdown`` or a stop signal.

    Parameters
    ----------
    argv
        Daemon arguments (see :func:`build_parser`).

    Returns
    -------
    int
        0 after a clean stop, 1 if the camera could not start.
    """
    from vampires.control.entry import run_daemon, setup_daemon_logging

    args = build_parser().parse_args(argv)
    setup_daemon_logging()
    try:
        camera = _make_camera(args)
    except VampiresError as exc:
        logger.error("camera %s: cannot start: %s", args.camera, exc)
        return 1

    def serve(stop: threading.Event) -> int:
        from vampires.control import DaemonServer

        with camera:
            server = DaemonServer(
                "camera",
                args.camera,
                handlers(camera, stop),
                state=lambda: "running" if camera.running else "stopped",
            )
            with server:
                logger.info("camera %s: serving on %s", args.camera, server.endpoint)
                server.serve(stop)
        logger.info("camera %s: daemon stopped", args.camera)
        return 0

    return run_daemon(f"camera {args.camera}", serve)


def _make_camera(args: argparse.Namespace) -> Camera:
    from vampires.camera.backends.factory import make_backend, resolve_backend

    config = Config.load()
    table = load_camera_table(args.camera, config=config, site=args.site)
    spec = resolve_backend(args.camera, config, backend=args.backend, sim=args.sim)
    backend = make_backend(
        spec,
        shm_dir=config.shm_dir,
        deterministic=args.deterministic,
        trigger_stream=args.trigger_stream,
    )
    return Camera(
        args.camera,
        backend=backend,
        table=table,
        config=config,
        crop=args.mode,
        readout=args.readout,
        tint=args.tint,
        fps=args.fps,
        external_trigger=True if args.external_trigger else None,
        data_type=args.data_type,
        restore=not args.fresh,
    )


if __name__ == "__main__":
    raise SystemExit(main())
