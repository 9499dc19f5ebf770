"""Numpy views into one mapped stream file: slot lookups and reads, metadata decoding."""

from __future__ import annotations

import math
import mmap
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vampires.stream import clock
from vampires.stream.keywords import _decode
from vampires.stream.layout import (
    CBFRAMEMD_DTYPE,
    KEYWORD_DTYPE,
    METADATA_DTYPE,
    PROC_TRACE_DTYPE,
    SEM_SIZE,
    StreamLayout,
    metadata_offset,
)
from vampires.stream.sem import Semaphore

if TYPE_CHECKING:
    from numpy.typing import DTypeLike, NDArray


#: A write flag held longer than this means a writer died mid-frame.
STUCK_WRITE_S = 0.5
#: Torn copies tolerated in a row before giving up on one read.
MAX_TORN = 200
MD_SIZE = METADATA_DTYPE.itemsize


@attrs.frozen
class Views:
    """Numpy views into one live mapping (dropped together on close)."""

    md: NDArray[np.void]
    data: NDArray[Any]
    kw: NDArray[np.void]
    kw_bytes: NDArray[np.uint8]
    cnt0: NDArray[np.uint64]
    cnt1: NDArray[np.uint64]
    write: NDArray[np.uint8]
    atime: NDArray[np.int64]
    writetime: NDArray[np.int64]
    cbindex: NDArray[np.uint32]
    cbcycle: NDArray[np.uint64]
    read_pid: NDArray[np.int32]
    write_pid: NDArray[np.int32]
    semctrl: NDArray[np.uint32]
    semstatus: NDArray[np.uint32]
    proctrace: NDArray[np.void]
    cbmd: NDArray[np.void]
    cbdata: NDArray[Any]
    atimearray: NDArray[np.int64] | None
    writetimearray: NDArray[np.int64] | None
    cntarray: NDArray[np.uint64] | None
    sems: tuple[Semaphore, ...]
    semlog: Semaphore


def build_views(
    mm: mmap.mmap, layout: StreamLayout, shape: tuple[int, ...], dtype: np.dtype[Any], name: str
) -> Views:
    # One root array holding a buffer export: mm.close() then refuses (BufferError)
    # while any view derived from it is alive, so no view can ever dangle.
    root = np.frombuffer(mm, dtype=np.uint8)

    def at(offset: int, dt: DTypeLike, count: int | tuple[int, ...]) -> NDArray[Any]:
        dtype_ = np.dtype(dt)
        shape = count if isinstance(count, tuple) else (count,)
        nbytes = math.prod(shape) * dtype_.itemsize
        return root[offset : offset + nbytes].view(dtype_).reshape(shape)

    md = at(0, METADATA_DTYPE, 1)
    base = int(root.ctypes.data)
    nsem = layout.nsemaphores
    depth = layout.depth
    kw = at(layout.keywords, KEYWORD_DTYPE, layout.nkeywords)
    return Views(
        md=md,
        data=at(layout.data, dtype, shape),
        kw=kw,
        kw_bytes=at(layout.keywords, np.uint8, layout.nkeywords * KEYWORD_DTYPE.itemsize),
        cnt0=at(metadata_offset("cnt0"), "<u8", 1),
        cnt1=at(metadata_offset("cnt1"), "<u8", 1),
        write=at(metadata_offset("write"), "u1", 1),
        atime=at(metadata_offset("atime"), "<i8", 2),  # timespec: tv_sec, tv_nsec
        writetime=at(metadata_offset("writetime"), "<i8", 2),
        cbindex=at(metadata_offset("CBindex"), "<u4", 1),
        cbcycle=at(metadata_offset("CBcycle"), "<u8", 1),
        read_pid=at(layout.sem_read_pid, "<i4", nsem),
        write_pid=at(layout.sem_write_pid, "<i4", nsem),
        semctrl=at(layout.semctrl, "<u4", nsem),
        semstatus=at(layout.semstatus, "<u4", nsem),
        proctrace=at(layout.proctrace, PROC_TRACE_DTYPE, layout.nproctrace),
        cbmd=at(layout.cbframemd, CBFRAMEMD_DTYPE, layout.cbsize),
        cbdata=at(layout.cbdata, dtype, (layout.cbsize, *shape)),
        atimearray=at(layout.atimearray, "<i8", (depth, 2)) if layout.temporal_cb else None,
        writetimearray=at(layout.writetimearray, "<i8", (depth, 2)) if layout.temporal_cb else None,
        cntarray=at(layout.cntarray, "<u8", depth) if layout.temporal_cb else None,
        sems=tuple(
            Semaphore(base + layout.semaphores + i * SEM_SIZE, f"stream {name!r} semaphore {i}")
            for i in range(nsem)
        ),
        semlog=Semaphore(base + layout.semlog, f"stream {name!r} semlog"),
    )


def slot_holding(v: Views, cbsize: int, cnt0: int) -> int | None:
    """Circular-buffer slot that holds frame ``cnt0`` (filled by our writer), or None.

    Slots advance by one per write, so frame ``cnt0`` sits ``cnt0(latest) - cnt0``
    slots behind ``CBindex``; its ``CBFRAMEMD`` must still say ``cnt0`` (the
    writer zeroes it before rewriting a slot; C writers never fill it).
    """
    lag = int(v.cnt0[0]) - cnt0
    if cnt0 <= 0 or not 0 <= lag < cbsize:
        return None
    slot = (int(v.cbindex[0]) - lag) % cbsize
    return slot if int(v.cbmd[slot]["cnt0"]) == cnt0 else None


def slot_times(md: np.void) -> tuple[int, int, int, int]:
    """(atime s, ns, writetime s, ns) of a ``CBFRAMEMD`` entry."""
    return (
        int(md["atime"]["tv_sec"]),
        int(md["atime"]["tv_nsec"]),
        int(md["writetime"]["tv_sec"]),
        int(md["writetime"]["tv_nsec"]),
    )


def read_slot(
    v: Views, cbsize: int, out: NDArray[Any], c0: int
) -> tuple[int, int, int, int, int, int] | None:
    """Copy frame ``c0`` from its circular-buffer slot, if our writer filled it.

    The slot is rewritten only ``CBsize`` frames later (and its ``cnt0`` is
    zeroed first), so this copy is consistent even while the writer is
    overwriting the main pixel buffer. C writers leave ``CBFRAMEMD`` empty:
    then this returns None and the caller copies the main buffer.
    """
    slot = slot_holding(v, cbsize, c0)
    if slot is None:
        return None
    md = v.cbmd[slot]
    np.copyto(out, v.cbdata[slot])
    cnt1 = int(md["cnt1"])
    times = slot_times(md)
    if int(md["cnt0"]) != c0:
        return None
    return (c0, cnt1, *times)


def decode_metadata(v: Views, file_size: int) -> dict[str, Any]:
    """Every metadata field plus semaphore bookkeeping, decoded (see ``Stream.metadata``)."""
    md = v.md[0]
    off = clock.tai_offset_ns()
    out: dict[str, Any] = {}
    for field in METADATA_DTYPE.names or ():
        value = md[field]
        if field in ("version", "name"):
            out[field] = _decode(bytes(value))
        elif field == "size":
            out[field] = [int(x) for x in value]
        elif field.endswith("time"):
            out[field] = clock.to_unix(int(value["tv_sec"]), int(value["tv_nsec"]), off)
        elif field == "cudaMemHandle":
            continue
        else:
            out[field] = int(value)
    out["semReadPID"] = [int(x) for x in v.read_pid]
    out["semWritePID"] = [int(x) for x in v.write_pid]
    out["semvalues"] = [s.value() for s in v.sems]
    out["semlog"] = v.semlog.value()
    out["file_size"] = file_size
    return out
