"""Against the real C library: milk's ImageStreamIO opens our streams and we open its.

Needs a checkout of milk-org/ImageStreamIO (IMAGESTRUCT_VERSION "2.00") in
``$ISIO_SRC`` and a C compiler; skipped otherwise (CI relies on the recorded
fixtures of ../shared/fixtures/imagestreamio). The library is compiled from
that checkout into a temporary folder; nothing of it lives in this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vampires.stream import Stream

pytestmark = [pytest.mark.isio, pytest.mark.integration]

# Our own test driver, written against the public API of ImageStreamIO.h.
DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "ImageStreamIO.h"

static long long bytesum(const unsigned char *b, size_t n) {
    long long s = 0;
    for (size_t j = 0; j < n; j++) s += (long long)b[j] * (long long)(j % 251 + 1);
    return s;
}

static int wait_once(IMAGE *im) {
    int idx = ImageStreamIO_getsemwaitindex(im, 0);
    ImageStreamIO_semflush(im, idx);
    printf("ready %d\n", idx); fflush(stdout);
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_sec += 30;
    if (ImageStreamIO_semtimedwait(im, idx, &ts) != 0) { printf("timeout\n"); return 1; }
    printf("woke %lu %u\n", (unsigned long)im->md->cnt0, (unsigned)im->array.UI16[0]);
    return 0;
}

int main(int argc, char **argv) {
    IMAGE im;
    if (argc == 3 && strcmp(argv[1], "read") == 0) {
        if (ImageStreamIO_openIm(&im, argv[2]) != IMAGESTREAMIO_SUCCESS) return 2;
        IMAGE_METADATA *md = im.md;
        printf("{\"naxis\": %d, \"size\": [%u, %u, %u], \"datatype\": %d, \"cnt0\": %lu, "
               "\"cnt1\": %lu, \"NBkw\": %d, \"sem\": %d, \"bytesum\": %lld, \"kw\": [",
               md->naxis, md->size[0], md->size[1], md->size[2], md->datatype,
               (unsigned long)md->cnt0, (unsigned long)md->cnt1, md->NBkw, md->sem,
               bytesum((unsigned char *)im.array.raw, md->imdatamemsize));
        const char *sep = "";
        for (int k = 0; k < md->NBkw; k++) {
            IMAGE_KEYWORD *kw = &im.kw[k];
            if (kw->type == 'N') continue;
            printf("%s{\"name\": \"%s\", \"type\": \"%c\", \"value\": ", sep, kw->name, kw->type);
            if (kw->type == 'L') printf("%ld", (long)kw->value.numl);
            else if (kw->type == 'D') printf("%.17g", kw->value.numf);
            else printf("\"%s\"", kw->value.valstr);
            printf(", \"comment\": \"%s\"}", kw->comment);
            sep = ", ";
        }
        printf("]}\n"); fflush(stdout);
        int rc = wait_once(&im);
        ImageStreamIO_closeIm(&im);
        return rc;
    }
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        uint32_t size[2] = {5, 3};
        if (ImageStreamIO_createIm(&im, argv[2], 2, size, _DATATYPE_UINT16, 1, 4, 0)
            != IMAGESTREAMIO_SUCCESS) return 2;
        for (int i = 0; i < 15; i++) im.array.UI16[i] = (uint16_t)(i * 7 + 3);
        strcpy(im.kw[0].name, "EXPTIME"); im.kw[0].type = 'D'; im.kw[0].value.numf = 0.5;
        strcpy(im.kw[0].comment, "[s] exposure");
        strcpy(im.kw[1].name, "DATA-TYP"); im.kw[1].type = 'S';
        strcpy(im.kw[1].value.valstr, "DARK"); strcpy(im.kw[1].comment, "type");
        im.md->write = 1;
        ImageStreamIO_UpdateIm(&im);
        printf("created\n"); fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 3;
        im.md->write = 1;
        for (int i = 0; i < 15; i++) im.array.UI16[i] = 99;
        ImageStreamIO_UpdateIm(&im);
        printf("posted\n"); fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 3;
        ImageStreamIO_closeIm(&im);
        return 0;
    }
    return 64;
}
"""


@pytest.fixture(scope="module")
def isio_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = os.environ.get("ISIO_SRC", "")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not src or not (Path(src) / "ImageStreamIO.c").is_file() or cc is None:
        pytest.skip("set ISIO_SRC to a milk-org/ImageStreamIO checkout (and install a C compiler)")
    folder = tmp_path_factory.mktemp("isio")
    (folder / "driver.c").write_text(DRIVER)
    exe = folder / "driver"
    subprocess.run(
        [cc, "-O1", f"-I{src}", "-o", str(exe), str(folder / "driver.c"),
         str(Path(src) / "ImageStreamIO.c"), "-pthread", "-lm"],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return exe


def test_c_library_opens_our_stream_and_wakes_on_our_write(isio_driver: Path):
    frame = ((np.arange(6 * 4) * 7 + 3) % 65536).astype(np.uint16).reshape(4, 6)
    with Stream.create("ours", (4, 6), np.uint16, nkeywords=5) as s:
        keywords = {
            "EXPTIME": (1e-3, "[s] exposure"),
            "U_CAMERA": (-42, "cam"),
            "DATA-TYP": ("OBJECT", "Subaru data type"),
            "GOOD": True,
        }
        s.write(frame, keywords=keywords)
        peer = subprocess.Popen(
            [str(isio_driver), "read", "ours"], stdout=subprocess.PIPE, text=True
        )
        assert peer.stdout is not None
        meta = json.loads(peer.stdout.readline())
        assert peer.stdout.readline().split() == ["ready", "0"]
        assert s.metadata()["semReadPID"][0] == peer.pid  # the C reader claimed index 0
        with s.reader() as r:
            assert r.index == 1  # ours does not take the live C reader's index
            s.write(np.full((4, 6), 4242, np.uint16))
            out, _ = peer.communicate(timeout=60)
            assert r.next(5.0).cnt0 == 2  # both woke
        assert peer.returncode == 0
        assert out.split() == ["woke", "2", "4242"]
    raw = np.frombuffer(frame.tobytes(), np.uint8).astype(np.int64)
    assert meta["bytesum"] == int((raw * (np.arange(raw.size) % 251 + 1)).sum())
    assert (meta["naxis"], meta["size"], meta["datatype"]) == (2, [6, 4, 0], 3)
    assert (meta["cnt0"], meta["NBkw"], meta["sem"]) == (1, 5, 10)
    assert meta["kw"] == [
        {"name": "EXPTIME", "type": "D", "value": 1e-3, "comment": "[s] exposure"},
        {"name": "U_CAMERA", "type": "L", "value": -42, "comment": "cam"},
        {"name": "DATA-TYP", "type": "S", "value": "OBJECT", "comment": "Subaru data type"},
        {"name": "GOOD", "type": "S", "value": "#TRUE#", "comment": ""},
    ]


def test_we_open_a_c_stream_and_wake_on_its_write(isio_driver: Path):
    peer = subprocess.Popen(
        [str(isio_driver), "write", "cmade"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdin is not None
    assert peer.stdout is not None
    try:
        assert peer.stdout.readline().strip() == "created"
        with Stream.open("cmade") as s, s.reader() as r:
            assert (s.shape, s.dtype, s.cnt0, s.nsemaphores, s.nkeywords) == (
                (3, 5),
                np.uint16,
                1,
                10,
                4,
            )
            np.testing.assert_array_equal(s.read().ravel(), np.arange(15) * 7 + 3)
            assert s.keywords.cards() == [
                ("EXPTIME", 0.5, "[s] exposure"),
                ("DATA-TYP", "DARK", "type"),
            ]
            peer.stdin.write("go\n")
            peer.stdin.flush()
            f = r.next(30.0)
            assert (f.cnt0, f.missed, int(f.data[0, 0])) == (2, 0, 99)
            assert peer.stdout.readline().strip() == "posted"
        peer.stdin.write("bye\n")
        peer.stdin.flush()
        peer.communicate(timeout=60)
        assert peer.returncode == 0
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.communicate()
