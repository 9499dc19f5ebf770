"""One stream name rule: stream, link, logger and control accept and refuse the same names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vampires.control.protocol import validate_name
from vampires.errors import VampiresError
from vampires.fitslog.names import check_stream_name as logger_check
from vampires.link._common import check_stream_name as link_check
from vampires.link.protocol import validate_stream_name
from vampires.stream import Stream, check_stream_name

GOOD = ["vcam1", "vcam+1", "_x", "x", "9", "a.b", "a-b", "vcam1.tcp-send", "A_b.c+d-e", "x" * 64]
BAD = ["", ".hidden", "-opt", "a/b", "../x", "a..b", "a b", "nul\0", "a:b", "é", "a~b", "x" * 80]

CHECKS: dict[str, Callable[[Any], object]] = {
    "stream": check_stream_name,
    "link wire": validate_stream_name,
    "link argument": lambda n: link_check(n, "stream name"),
    "logger": logger_check,
    "control": validate_name,
}


@pytest.mark.parametrize("where", list(CHECKS))
@pytest.mark.parametrize("name", GOOD)
def test_same_names_accepted_everywhere(where: str, name: str) -> None:
    assert CHECKS[where](name) == name


@pytest.mark.parametrize("where", list(CHECKS))
@pytest.mark.parametrize("name", [*BAD, 5, None])
def test_same_names_refused_everywhere(where: str, name: object) -> None:
    with pytest.raises(VampiresError, match="name"):
        CHECKS[where](name)


@pytest.mark.parametrize("name", ["vcam+1", "_x", "a.b-c"])
def test_a_valid_name_is_a_stream_file(name: str, shm_dir: Path) -> None:
    with Stream.create(name, (2, 2), np.uint8) as s:
        assert s.path == shm_dir / f"{name}.im.shm"
    assert Stream.exists(name)
