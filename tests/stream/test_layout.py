"""The stream layout: field offsets, an independent C-layout derivation, segments."""

from __future__ import annotations

import numpy as np
import pytest

from vampires.stream.layout import (
    CBFRAMEMD_DTYPE,
    DATATYPE_DTYPES,
    KEYWORD_DTYPE,
    METADATA_DTYPE,
    PROC_TRACE_DTYPE,
    StreamLayout,
    round_up_8,
)

# Offsets measured with offsetof() on ImageStruct.h (../shared/reference/imagestreamio-layout.md).
MEASURED_METADATA = {
    "version": 0, "name": 32, "naxis": 112, "size": 116, "nelement": 128, "datatype": 136,
    "imagetype": 144, "creationtime": 152, "lastaccesstime": 168, "atime": 184,
    "writetime": 200, "creatorPID": 216, "ownerPID": 220, "shared": 224, "inode": 232,
    "location": 240, "status": 241, "flag": 248, "logflag": 256, "sem": 258,
    "NBproctrace": 260, "cnt0": 264, "cnt1": 272, "cnt2": 280, "write": 288, "NBkw": 290,
    "CBsize": 292, "CBindex": 296, "CBcycle": 304, "imdatamemsize": 312, "cudaMemHandle": 320,
}  # fmt: skip
MEASURED_KEYWORD = {"name": 0, "type": 16, "numl": 24, "numf": 24, "valstr": 24, "cnt": 40,
                    "comment": 48}  # fmt: skip
MEASURED_PROC_TRACE = {"triggermode": 0, "procwrite_PID": 4, "trigger_inode": 8,
                       "ts_procstart": 16, "ts_streamupdate": 32, "trigsemindex": 48,
                       "triggerstatus": 52, "cnt0": 56}  # fmt: skip
MEASURED_CBFRAMEMD = {"cnt0": 0, "cnt1": 8, "atime": 16, "writetime": 32}


def offsets(dtype: np.dtype) -> dict[str, int]:
    assert dtype.fields is not None
    return {name: dtype.fields[name][1] for name in dtype.names or ()}


@pytest.mark.parametrize(
    ("dtype", "measured", "size"),
    [
        (METADATA_DTYPE, MEASURED_METADATA, 384),
        (KEYWORD_DTYPE, MEASURED_KEYWORD, 128),
        (PROC_TRACE_DTYPE, MEASURED_PROC_TRACE, 64),
        (CBFRAMEMD_DTYPE, MEASURED_CBFRAMEMD, 48),
    ],
)
def test_offsets_match_measured(dtype, measured, size):
    assert dtype.itemsize == size
    assert offsets(dtype) == measured


# ---- an independent derivation: C struct rules from the field list of ImageStruct.h
# (name, size of one element, alignment, count); "ZERO" is the `uint64_t : 0` bit-field
# that forces the next member to an 8-byte boundary.
TS = ("timespec", 16, 8)
C_METADATA = [
    ("version", 1, 1, 32), ("name", 1, 1, 80), ("naxis", 1, 1, 1), ("size", 4, 4, 3),
    ("nelement", 8, 8, 1), ("datatype", 1, 1, 1), ("imagetype", 8, 8, 1),
    ("creationtime", 16, 8, 1), ("lastaccesstime", 16, 8, 1), ("atime", 16, 8, 1),
    ("writetime", 16, 8, 1), ("creatorPID", 4, 4, 1), ("ownerPID", 4, 4, 1),
    ("shared", 1, 1, 1), ("inode", 8, 8, 1), ("location", 1, 1, 1), ("status", 1, 1, 1),
    ("flag", 8, 8, 1), ("logflag", 1, 1, 1), ("sem", 2, 2, 1), ("NBproctrace", 2, 2, 1),
    ("ZERO", 0, 8, 0), ("cnt0", 8, 8, 1), ("cnt1", 8, 8, 1), ("cnt2", 8, 8, 1),
    ("write", 1, 1, 1), ("NBkw", 2, 2, 1), ("CBsize", 4, 4, 1), ("CBindex", 4, 4, 1),
    ("CBcycle", 8, 8, 1), ("imdatamemsize", 8, 8, 1), ("cudaMemHandle", 1, 1, 64),
]  # fmt: skip
C_KEYWORD = [("name", 1, 1, 16), ("type", 1, 1, 1), ("ZERO", 0, 8, 0), ("numl", 16, 8, 1),
             ("cnt", 8, 8, 1), ("comment", 1, 1, 80)]  # fmt: skip
C_PROC_TRACE = [("triggermode", 4, 4, 1), ("procwrite_PID", 4, 4, 1),
                ("trigger_inode", 8, 8, 1), ("ts_procstart", 16, 8, 1),
                ("ts_streamupdate", 16, 8, 1), ("trigsemindex", 4, 4, 1),
                ("triggerstatus", 4, 4, 1), ("cnt0", 8, 8, 1)]  # fmt: skip
C_CBFRAMEMD = [("cnt0", 8, 8, 1), ("cnt1", 8, 8, 1), ("atime", 16, 8, 1),
               ("writetime", 16, 8, 1)]  # fmt: skip


def c_layout(fields: list[tuple[str, int, int, int]]) -> tuple[dict[str, int], int]:
    pos, max_align, out = 0, 1, {}
    for name, size, align, count in fields:
        pos = (pos + align - 1) // align * align
        max_align = max(max_align, align)
        if name != "ZERO":
            out[name] = pos
        pos += size * count
    return out, (pos + max_align - 1) // max_align * max_align


@pytest.mark.parametrize(
    ("dtype", "fields"),
    [
        (METADATA_DTYPE, C_METADATA),
        (KEYWORD_DTYPE, C_KEYWORD),
        (PROC_TRACE_DTYPE, C_PROC_TRACE),
        (CBFRAMEMD_DTYPE, C_CBFRAMEMD),
    ],
)
def test_offsets_match_c_alignment_rules(dtype, fields):
    derived, size = c_layout(fields)
    ours = offsets(dtype)
    for union_member in ("numf", "valstr"):
        ours.pop(union_member, None)
    assert ours == derived
    assert dtype.itemsize == size


def test_round_up_8():
    assert [round_up_8(n) for n in (0, 1, 7, 8, 9, 40, 44)] == [0, 8, 8, 8, 16, 40, 48]


def test_segments_of_reference_example():
    # 64 x 48 uint16, 8 keywords, 10 semaphores: 8704 bytes (layout reference)
    lay = StreamLayout.compute(imdatamemsize=64 * 48 * 2, nkeywords=8, nsemaphores=10)
    assert lay.data == 384
    assert lay.keywords == 384 + 6144
    assert lay.semaphores == lay.keywords + 1024
    assert lay.semlog == lay.semaphores + 320
    assert lay.sem_read_pid == lay.semlog + 32
    assert lay.sem_write_pid == lay.sem_read_pid + 40
    assert lay.semctrl == lay.sem_write_pid + 40
    assert lay.semstatus == lay.semctrl + 40
    assert lay.proctrace == lay.semstatus + 40
    assert lay.cbframemd == lay.proctrace + 640
    assert lay.total == 8704


def test_odd_sizes_round_each_segment():
    # 3 uint8 pixels, 1 keyword, 3 semaphores: pids 12 -> 16 bytes each
    lay = StreamLayout.compute(imdatamemsize=3, nkeywords=1, nsemaphores=3)
    assert lay.keywords == 384 + 8
    assert lay.sem_write_pid - lay.sem_read_pid == 16
    assert all(
        getattr(lay, f) % 8 == 0 for f in ("data", "keywords", "semaphores", "proctrace", "total")
    )


def test_temporal_circular_buffer_arrays_and_cb_slots():
    lay = StreamLayout.compute(
        imdatamemsize=100, nkeywords=0, nsemaphores=1, imagetype=0x20001, depth=5, cbsize=3
    )
    assert lay.temporal_cb
    assert lay.writetimearray - lay.atimearray == 80
    assert lay.cntarray - lay.writetimearray == 80
    assert lay.cbframemd - lay.cntarray == 40
    assert lay.cbdata - lay.cbframemd == 144
    assert lay.total - lay.cbdata == 304  # 3 x 100 rounded to 8
    plain = StreamLayout.compute(imdatamemsize=100, nkeywords=0, nsemaphores=1, depth=5)
    assert not plain.temporal_cb
    assert plain.cbframemd == plain.atimearray


def test_datatype_table():
    assert DATATYPE_DTYPES[3] == np.uint16
    assert DATATYPE_DTYPES[9] == np.float32
    assert DATATYPE_DTYPES[13] == np.float16
    assert DATATYPE_DTYPES[12] == np.complex128
    assert sorted(DATATYPE_DTYPES) == list(range(1, 14))
