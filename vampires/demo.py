"""The whole VAMPIRES data path on one machine, on simulated cameras.

:func:`run_demo` starts, in a private shared-memory folder on a tmpfs (so it
never disturbs real streams):

- a shared trigger source firing vcam1 and vcam2 together (external trigger,
  as the VAMPIRES trigger micro-controller does), both in the MBI crop, and
  vpupcam free-running at 30 fps;
- a full-rate TCP mirror of vcam1 into the stream ``vcam1_sc6`` (what
  scexao6 sees);
- a 20 FPS ZMQ publisher of vcam1 and a subscriber iterating over it (what
  sonne sees);
- one :class:`~vampires.fitslog.logger.Logger` per VCAM, writing FITS cubes
  with full headers and sidecars under ``<out>/<YYYYMMDD>/vcam<N>/``.

It reports progress while it runs, then stops everything, verifies every
file (header, sidecar rows, ``fitsverify`` when installed) and returns a
:class:`DemoSummary`. Every process, thread and stream is cleaned up on exit,
also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from vampires._checks import positive_field
from vampires.errors import ConfigError, LinkError, VampiresError

if TYPE_CHECKING:
    from vampires.fitslog.logger import Logger
    from vampires.link.zmq import ZmqSubscriber

__all__ = [
    "CameraResult",
    "DemoOptions",
    "DemoProgress",
    "DemoSummary",
    "FileCheck",
    "LinkResult",
    "run_demo",
    "verify_cube",
]

logger = logging.getLogger(__name__)

_VCAMS = ("vcam1", "vcam2")
_MIRROR = "vcam1_sc6"
_TRIGGER = "vampires_trig"


@attrs.frozen(kw_only=True)
class DemoOptions:
    """What the demo runs.

    Attributes
    ----------
    duration
        Seconds of logging.
    crop
        Crop of vcam1 and vcam2 (a name from their tables, default MBI).
    fps
        Trigger rate of the two VCAMs [Hz].
    cube_frames
        Frames per cube; default 100 so that a few cubes fit in the run (the
        production preset for MBI is 250 frames, 1.2 GB: ``--cube-frames 250``).
    out
        Folder for the FITS cubes; default a new temporary folder.
    keep
        Keep the files after the run (always true when ``out`` is given).
    zmq_fps
        Throttle of the ZMQ link [Hz].
    """

    duration: float = attrs.field(default=20.0, validator=positive_field("demo", finite=False))
    crop: str = attrs.field(default="MBI")
    fps: float = attrs.field(default=20.0, validator=positive_field("demo", finite=False))
    cube_frames: int = attrs.field(default=100, validator=positive_field("demo", finite=False))
    out: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    keep: bool = False
    zmq_fps: float = attrs.field(default=20.0, validator=positive_field("demo", finite=False))

    @crop.validator
    def _check_crop(self, _attr: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not value:
            msg = f"demo: crop must be a crop name such as MBI or STANDARD (got {value!r})"
            raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class CameraProgress:
    """Live counters of one logged camera."""

    name: str
    frames: int
    files: int
    dropped: int
    written_bytes: int
    current_file: str | None
    error: str | None


@attrs.frozen(kw_only=True)
class DemoProgress:
    """A progress snapshot, handed to the ``on_progress`` callback."""

    elapsed: float
    duration: float
    cameras: tuple[CameraProgress, ...]
    mirror_frames: int
    zmq_frames: int
    stage: str


@attrs.frozen(kw_only=True)
class FileCheck:
    """The verification of one cube."""

    path: Path
    frames: int
    sidecar_rows: int
    fitsverify: str  # "ok", "skipped (not installed)" or the first error line
    ok: bool


@attrs.frozen(kw_only=True)
class CameraResult:
    """What one camera's logger did."""

    name: str
    frames: int
    dropped: int
    files: tuple[FileCheck, ...]
    nbytes: int
    seconds: float
    folder: Path | None
    dropped_late: int = 0
    dropped_no_buffer: int = 0
    dropped_disk: int = 0
    error: str | None = None

    @property
    def mb_per_s(self) -> float:
        """Bytes logged per second of saving, in MB/s (decimal)."""
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def verified(self) -> int:
        """Number of files that passed every check."""
        return sum(f.ok for f in self.files)


@attrs.frozen(kw_only=True)
class LinkResult:
    """What a link carried."""

    name: str
    frames: int
    skipped: int
    detail: str


@attrs.frozen(kw_only=True)
class DemoSummary:
    """The result of :func:`run_demo`."""

    out: Path
    kept: bool
    cameras: tuple[CameraResult, ...]
    links: tuple[LinkResult, ...]
    start_skew: float
    interrupted: bool

    @property
    def ok(self) -> bool:
        """True when every file verified and nothing was dropped."""
        return all(c.dropped == 0 and c.verified == len(c.files) and c.files for c in self.cameras)

    def explanations(self) -> list[str]:
        """Return one line per kind of drop seen: what happened and what to try."""
        return [line for cam in self.cameras for line in explain_drops(cam, self.load)]

    load: tuple[float, int] = (0.0, 1)
    """1-minute load average at the end of the run, and the number of CPUs."""


def explain_drops(cam: CameraResult, load: tuple[float, int] = (0.0, 1)) -> list[str]:
    """Say why a camera's logger dropped frames, and what to try (empty when none).

    Parameters
    ----------
    cam
        One camera's result (its drops by cause come from the logger's status).
    load
        1-minute load average and CPU count, for the "busy machine" case.

    Returns
    -------
    list of str
    """
    lines = []
    busy = f"load average {load[0]:.1f} on {load[1]} CPU(s)"
    if cam.dropped_late:
        lines.append(
            f"{cam.name}: {cam.dropped_late} frames were replaced in shared memory before the "
            f"logger's reader thread got to them: it was held up for more than a frame period "
            f"(the machine is busy: {busy}; the demo runs cameras, links and loggers in one "
            "process). Try: close other programs, a lower rate (--fps 10), or loggers as "
            "daemons with nice -10 as in production ('vampires logger start')."
        )
    if cam.dropped_no_buffer:
        lines.append(
            f"{cam.name}: {cam.dropped_no_buffer} frames arrived while every cube buffer was "
            f"still being written: the disk took {cam.mb_per_s:.0f} MB/s, less than the camera "
            "sent. Try: --out on a faster disk, smaller cubes (--cube-frames 50) or --fps 10."
        )
    if cam.dropped_disk:
        lines.append(
            f"{cam.name}: {cam.dropped_disk} frames could not be written "
            f"({cam.error or 'disk error'}). Try: free space on the disk of --out, "
            "or another --out."
        )
    other = cam.dropped - cam.dropped_late - cam.dropped_no_buffer - cam.dropped_disk
    if other > 0:
        lines.append(f"{cam.name}: {other} frames dropped (see the logger's status).")
    return lines


def verify_cube(path: Path) -> FileCheck:
    """Check one logged cube: header shape, sidecar rows, ``fitsverify``.

    Parameters
    ----------
    path
        A ``.fits`` cube written by the logger.

    Returns
    -------
    FileCheck
        ``ok`` is true when the sidecar has exactly NAXIS3 rows and
        ``fitsverify`` (if installed) reports no error and no warning.
    """
    from vampires.watch.headers import read_cube_header

    try:
        shape = read_cube_header(path).shape
    except VampiresError as exc:
        return FileCheck(path=path, frames=0, sidecar_rows=0, fitsverify=str(exc), ok=False)
    frames = shape[0] if len(shape) == 3 else 1
    sidecar = path.with_suffix(".txt")
    try:
        lines = sidecar.read_text().splitlines()
        rows = sum(1 for line in lines if line.strip() and not line.startswith("#"))
    except OSError:
        rows = -1
    tool = shutil.which("fitsverify")
    if tool is None:
        verdict, clean = "skipped (fitsverify not installed)", True
    else:
        run = subprocess.run(
            [tool, "-q", str(path)], capture_output=True, text=True, timeout=120, check=False
        )
        text = (run.stdout + run.stderr).strip()
        # -q prints one line: "verification OK: <file>" or the counts of problems
        clean = run.returncode == 0 and text.startswith("verification OK")
        verdict = "ok" if clean else (text.splitlines() or ["fitsverify failed"])[0]
    return FileCheck(
        path=path,
        frames=frames,
        sidecar_rows=rows,
        fitsverify=verdict,
        ok=clean and rows == frames,
    )


@contextlib.contextmanager
def _private_shm() -> Iterator[Path]:
    """Point MILK_SHM_DIR to a fresh folder on a tmpfs for the demo; remove it after."""
    dev_shm = Path("/dev/shm")  # noqa: S108 - the tmpfs itself; mkdtemp makes a private folder
    base = dev_shm if dev_shm.is_dir() else None
    path = Path(tempfile.mkdtemp(prefix="vampires-demo-shm-", dir=base))
    old = os.environ.get("MILK_SHM_DIR")
    os.environ["MILK_SHM_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("MILK_SHM_DIR", None)
        else:
            os.environ["MILK_SHM_DIR"] = old
        shutil.rmtree(path, ignore_errors=True)


def _count_zmq(sub: ZmqSubscriber, stop: threading.Event, counter: list[int]) -> None:
    """Iterate over the ZMQ subscriber as a script on sonne would."""
    try:
        while not stop.is_set():
            try:
                sub.recv(timeout=0.2)
            except LinkError:
                continue
            counter[0] += 1
    finally:
        sub.close()


def run_demo(
    options: DemoOptions,
    *,
    on_progress: Callable[[DemoProgress], None] | None = None,
    interval: float = 0.5,
) -> DemoSummary:
    """Run the whole data path on simulated cameras, then verify the files.

    Parameters
    ----------
    options
        What to run (duration, crop, rates, output folder).
    on_progress
        Called about every ``interval`` seconds with a :class:`DemoProgress`.
    interval
        Seconds between progress reports.

    Returns
    -------
    DemoSummary
        Frames, drops, MB/s and verified files per camera, and the links' counters.
        If Ctrl-C interrupted the run, ``interrupted`` is true and the files
        written so far are still verified.

    Raises
    ------
    ConfigError
        Bad options (unknown crop, unwritable output folder).
    """
    from vampires.camera.backends.simulated import SimulatedBackend, SimulatedTrigger
    from vampires.camera.camera import Camera
    from vampires.config import Config
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.link.tcp import TcpReceiver, TcpSender
    from vampires.link.zmq import ZmqPublisher, ZmqSubscriber

    made_out = options.out is None
    out = Path(tempfile.mkdtemp(prefix="vampires-demo-")) if made_out else Path(options.out or "")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".vampires-demo-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        msg = f"demo: cannot write to the output folder {out}: {exc}"
        raise ConfigError(msg) from exc
    keep = options.keep or not made_out
    interrupted = False
    loggers: dict[str, Logger] = {}
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    mirror_status = zmq_status = None
    zmq_count = [0]

    def snapshot(stage: str, t0: float) -> DemoProgress:
        cams = []
        for name, lg in loggers.items():
            st = lg.status()
            cams.append(
                CameraProgress(
                    name=name,
                    frames=st.frames,
                    files=st.files,
                    dropped=st.dropped,
                    written_bytes=st.written_bytes,
                    current_file=st.current_file,
                    error=st.error,
                )
            )
        return DemoProgress(
            elapsed=time.monotonic() - t0,
            duration=options.duration,
            cameras=tuple(cams),
            mirror_frames=receiver.status().frames,
            zmq_frames=zmq_count[0],
            stage=stage,
        )

    with _private_shm() as shm, contextlib.ExitStack() as stack:
        # Cameras, links and loggers share one interpreter here (daemons in
        # production): a 1 ms GIL switch interval keeps every reader thread
        # within a frame period of its semaphore, as the logger daemon does.
        stack.callback(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(0.001)
        config = Config.load(shm_dir=shm, data_root=out, archive_root=out)
        trigger = SimulatedTrigger(_TRIGGER, rate=options.fps, shm_dir=shm)
        stack.callback(trigger.close)
        cameras = []
        for name in _VCAMS:
            cam = Camera(
                name,
                config=config,
                backend=SimulatedBackend(trigger_stream=_TRIGGER, shm_dir=shm),
                crop=options.crop,
                external_trigger=True,
                data_type="OBJECT",
                restore=False,
            )
            stack.callback(cam.close)
            cameras.append(cam)
        pupil = Camera("vpupcam", config=config, restore=False, data_type="OBJECT")
        stack.callback(pupil.close)
        for cam in (*cameras, pupil):
            cam.start()
        trigger.start()
        stack.callback(trigger.stop)

        receiver = TcpReceiver(0, name=_MIRROR, bind="127.0.0.1", shm_dir=shm).start()
        stack.callback(receiver.close)
        sender = TcpSender("vcam1", "127.0.0.1", receiver.port, shm_dir=shm).start()
        stack.callback(sender.close)
        publisher = ZmqPublisher(
            "vcam1", bind="tcp://127.0.0.1:*", max_fps=options.zmq_fps, shm_dir=shm
        ).start()
        stack.callback(publisher.close)
        subscriber = ZmqSubscriber(publisher.endpoint, "vcam1")
        zmq_stop = threading.Event()
        zmq_thread = threading.Thread(
            target=_count_zmq, args=(subscriber, zmq_stop, zmq_count), daemon=True
        )
        zmq_thread.start()
        stack.callback(zmq_thread.join, 5.0)
        stack.callback(zmq_stop.set)

        policy = CubePolicy(frames_per_cube=options.cube_frames, cubes=-1)
        for name in _VCAMS:
            lg = Logger(name, policy, root=out, shm_dir=shm)
            stack.callback(lg.close)
            loggers[name] = lg
        t0 = time.monotonic()
        try:
            for name, lg in loggers.items():
                # returns once the logger's buffers are paged in and its reader listens
                started[name] = lg.start()
            t0 = time.monotonic()  # the duration is saving time
            deadline = t0 + options.duration
            while (now := time.monotonic()) < deadline:
                if on_progress is not None:
                    on_progress(snapshot("logging", t0))
                time.sleep(min(interval, max(deadline - now, 0.0)))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for name, lg in loggers.items():
                lg.pause(wait_for_cube=False)
                seconds[name] = time.time() - started.get(name, time.time())
            for lg in loggers.values():
                lg.wait_idle(timeout=120.0)
            if on_progress is not None:
                on_progress(snapshot("stopped", t0))
            mirror_status, zmq_status = receiver.status(), subscriber.status()
            statuses = {name: lg.status() for name, lg in loggers.items()}

    results = []
    for name in _VCAMS:
        st = statuses[name]
        folder = st.last_file.parent if st.last_file is not None else st.folder
        files = sorted(out.glob(f"*/{name}/{name}_*.fits"))
        results.append(
            CameraResult(
                name=name,
                frames=st.frames,
                dropped=st.dropped,
                files=tuple(verify_cube(p) for p in files),
                nbytes=st.written_bytes,
                seconds=seconds.get(name, 0.0),
                folder=folder,
                dropped_late=st.dropped_late,
                dropped_no_buffer=st.dropped_no_buffer,
                dropped_disk=st.dropped_disk,
                error=st.error,
            )
        )
    links = (
        LinkResult(
            name=f"TCP vcam1->{_MIRROR}",
            frames=mirror_status.frames,
            skipped=mirror_status.skipped,
            detail=f"torn {mirror_status.torn}, reconnects {mirror_status.reconnects}",
        ),
        LinkResult(
            name=f"ZMQ vcam1 {options.zmq_fps:g} FPS",
            frames=zmq_count[0],
            skipped=zmq_status.skipped,
            detail=f"malformed {zmq_status.malformed}",
        ),
    )
    skew = max(started.values()) - min(started.values()) if len(started) > 1 else 0.0
    return DemoSummary(
        out=out,
        kept=keep,
        cameras=tuple(results),
        links=links,
        start_skew=skew,
        interrupted=interrupted,
        load=(os.getloadavg()[0], os.cpu_count() or 1),
    )


def discard_output(summary: DemoSummary) -> None:
    """Remove the demo's output folder unless it is to be kept.

    Parameters
    ----------
    summary
        The result of :func:`run_demo`.
    """
    if not summary.kept:
        shutil.rmtree(summary.out, ignore_errors=True)
