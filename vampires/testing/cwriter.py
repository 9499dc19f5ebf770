"""A stream writer that behaves like the C programs at the telescope, in its own process.

camstack's grabbers, milk processes and pyMilk scripts write streams with no
circular buffer (``CBsize`` 0): each frame overwrites the last one in place,
and a reader has one frame period to take it. This module writes streams that
way so tests and benchmarks can face what production faces:

- ``order="isio"``: ImageStreamIO's order (write flag, pixels, counters and
  times, write flag cleared, then the semaphores posted) -- what
  :meth:`vampires.Stream.write` does on a stream with no circular buffer;
- ``order="pymilk"``: pyMilk's ``set_data`` order, the semaphores posted
  *before* ``cnt0`` moves (a reader woken by the post may see the old count).

Frames are paced against absolute deadlines (``t0 + i / fps``), as a camera
clock paces them: a late frame does not push the later ones back.

Every frame carries its index in its first and last eight bytes
(:func:`frame_tag`), so a receiver can count missed, duplicated and torn
frames from the pixels alone, whatever path they took.

Run it as a process::

    python -m vampires.testing.cwriter NAME --shape 1096 2236 --fps 200 --frames 1500

It creates ``NAME`` (exclusive unless ``--exist-ok``), waits ``--start-delay``
seconds, writes, prints one JSON line of counts and exits; or use
:class:`CWriterProcess` from Python.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import attrs
import numpy as np

from vampires.errors import StreamError
from vampires.stream import Stream
from vampires.testing.foreign import ForeignWriter

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CWriterProcess",
    "CWriterResult",
    "WriteOrder",
    "count_tags",
    "cube_tags",
    "frame_tag",
    "make_base_frame",
    "run_writer",
    "tag_frame",
    "write_frame",
]

WriteOrder = Literal["isio", "pymilk"]
_TAG = np.dtype("<u8")


def make_base_frame(
    shape: Sequence[int], dtype: np.dtype[Any] | str, seed: int = 0
) -> NDArray[Any]:
    """Return a frame of camera-like noise (bias 200, a few ADU of noise) to tag and write."""
    rng = np.random.default_rng(seed)
    frame = rng.normal(200.0, 5.0, size=tuple(shape))
    return frame.astype(np.dtype(dtype))


def _tag_bytes(frame: NDArray[Any]) -> NDArray[np.uint8]:
    flat = frame.reshape(-1).view(np.uint8)
    if flat.size < 2 * _TAG.itemsize:
        msg = f"a tagged frame needs at least {2 * _TAG.itemsize} bytes, not {flat.size}"
        raise StreamError(msg)
    return flat


def tag_frame(frame: NDArray[Any], index: int) -> None:
    """Write ``index`` into the first and last eight bytes of ``frame`` (in place, C order)."""
    flat = _tag_bytes(frame)
    tag = np.array([index], dtype=_TAG).view(np.uint8)
    flat[: _TAG.itemsize] = tag
    flat[-_TAG.itemsize :] = tag


def frame_tag(frame: NDArray[Any]) -> int:
    """Return the index a frame was tagged with, or -1 if its head and tail disagree (torn)."""
    flat = _tag_bytes(np.ascontiguousarray(frame))
    head = int(flat[: _TAG.itemsize].view(_TAG)[0])
    tail = int(flat[-_TAG.itemsize :].view(_TAG)[0])
    return head if head == tail else -1


def cube_tags(path: str | os.PathLike[str]) -> list[int]:
    """Return the tag of each complete frame of a logged uint16 cube (``.fits`` or ``.fits.tmp``).

    FITS stores uint16 as big-endian int16 with ``BZERO = 32768``: the tag is
    read back from the stored bytes of the first and last four pixels without
    loading the cube. A frame whose head and tail disagree (torn) gives -1.
    """
    from vampires.fitslog.partial import open_partial

    cube = open_partial(Path(path))
    if not cube.frames:
        return []
    flip = np.uint16(0x8000)
    head = (np.asarray(cube.data[:, 0, :4]).view(">u2") ^ flip).astype("<u2")
    tail = (np.asarray(cube.data[:, -1, -4:]).view(">u2") ^ flip).astype("<u2")
    h = np.ascontiguousarray(head).view(_TAG).reshape(-1)
    t = np.ascontiguousarray(tail).view(_TAG).reshape(-1)
    return [int(a) if a == b else -1 for a, b in zip(h, t, strict=True)]


def count_tags(tags: Iterable[int], frames: int) -> tuple[int, int, int]:
    """Return ``(missed, duplicated, torn)`` for the tags seen of frames ``0 .. frames-1``."""
    seen: set[int] = set()
    duplicated = torn = 0
    for tag in tags:
        if tag < 0:
            torn += 1
        elif tag in seen:
            duplicated += 1
        else:
            seen.add(tag)
    missed = sum(1 for i in range(frames) if i not in seen)
    return missed, duplicated, torn


def write_frame(
    stream: Stream,
    frame: NDArray[Any],
    order: WriteOrder = "isio",
    *,
    writer: ForeignWriter | None = None,
) -> int:
    """Publish ``frame`` into a stream with no circular buffer, in the given writer's order.

    ``order="pymilk"`` writes through ``writer`` (a :class:`ForeignWriter` of
    ``stream``, made for this one frame if None). Returns the new ``cnt0``.
    """
    if order == "isio":
        return stream.write(frame)
    if order != "pymilk":
        msg = f"unknown write order {order!r}: 'isio' or 'pymilk'"  # type: ignore[unreachable]
        raise StreamError(msg)
    if writer is not None:
        return writer.write_pymilk(frame)
    with ForeignWriter(stream) as own:
        return own.write_pymilk(frame)


@attrs.frozen
class CWriterResult:
    """What a writer run did."""

    #: frames published
    frames: int
    #: frames published after their deadline had passed by more than one period
    late: int
    #: seconds from the first deadline to the last publish
    elapsed: float


def run_writer(
    stream: Stream,
    *,
    fps: float,
    frames: int,
    order: WriteOrder = "isio",
    base: NDArray[Any] | None = None,
) -> CWriterResult:
    """Write ``frames`` tagged frames into ``stream`` at ``fps`` against absolute deadlines."""
    if not fps > 0:
        msg = f"fps must be > 0, not {fps!r}"
        raise StreamError(msg)
    frame = make_base_frame(stream.shape, stream.dtype) if base is None else base.copy()
    period = 1.0 / fps
    late = 0
    with contextlib.ExitStack() as stack:
        # pyMilk's order goes through a mapping of the writer's own, made once
        writer = stack.enter_context(ForeignWriter(stream)) if order == "pymilk" else None
        t0 = time.monotonic()
        for i in range(frames):
            deadline = t0 + i * period
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > period:
                late += 1
            tag_frame(frame, i)
            write_frame(stream, frame, order, writer=writer)
        return CWriterResult(frames=frames, late=late, elapsed=time.monotonic() - t0)


@attrs.define
class CWriterProcess:
    """A C-like writer in its own process (a context manager; killed on exit if still running).

    The stream is created by the child before :meth:`__enter__` returns.
    """

    name: str
    shape: tuple[int, ...]
    fps: float
    frames: int
    dtype: str = "uint16"
    order: WriteOrder = "isio"
    start_delay: float = 0.5
    shm_dir: Path | None = None
    exist_ok: bool = False
    _proc: subprocess.Popen[str] | None = attrs.field(default=None, init=False)

    def __enter__(self) -> Self:
        cmd = [
            sys.executable,
            "-m",
            "vampires.testing.cwriter",
            self.name,
            "--shape",
            *map(str, self.shape),
            "--dtype",
            self.dtype,
            "--fps",
            str(self.fps),
            "--frames",
            str(self.frames),
            "--order",
            self.order,
            "--start-delay",
            str(self.start_delay),
        ]
        if self.shm_dir is not None:
            cmd += ["--shm-dir", str(self.shm_dir)]
        if self.exist_ok:
            cmd.append("--exist-ok")
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self._proc.stdout.readline() if self._proc.stdout is not None else ""
        if line.strip() != "ready":
            _, err = self._proc.communicate(timeout=10)
            msg = f"C-like writer for {self.name!r} did not start: {err.strip() or line.strip()}"
            raise StreamError(msg)
        return self

    def wait(self, timeout: float | None = None) -> CWriterResult:
        """Wait for the writer to finish and return its counts."""
        if self._proc is None:
            msg = "writer not started (use it as a context manager)"
            raise StreamError(msg)
        out, err = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            msg = f"C-like writer for {self.name!r} failed: {err.strip()}"
            raise StreamError(msg)
        return CWriterResult(**json.loads(out.strip().splitlines()[-1]))

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Create a stream with no circular buffer and write tagged frames into it like C code."""
    p = argparse.ArgumentParser(prog="python -m vampires.testing.cwriter", description=main.__doc__)
    p.add_argument("name")
    p.add_argument("--shape", type=int, nargs="+", required=True)
    p.add_argument("--dtype", default="uint16")
    p.add_argument("--fps", type=float, required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--order", choices=["isio", "pymilk"], default="isio")
    p.add_argument("--start-delay", type=float, default=0.5)
    p.add_argument("--shm-dir", type=Path)
    p.add_argument("--exist-ok", action="store_true")
    args = p.parse_args(argv)
    with Stream.create(
        args.name,
        shape=tuple(args.shape),
        dtype=np.dtype(args.dtype),
        shm_dir=args.shm_dir,
        exist_ok=args.exist_ok,
    ) as stream:
        base = make_base_frame(stream.shape, stream.dtype)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        time.sleep(args.start_delay)
        result = run_writer(stream, fps=args.fps, frames=args.frames, order=args.order, base=base)
    sys.stdout.write(json.dumps(attrs.asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
