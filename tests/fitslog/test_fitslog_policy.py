from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vampires.errors import ConfigError
from vampires.fitslog.policy import (
    MBI,
    MBI_REDUCED,
    MIN_TIMEOUT,
    PRESETS,
    STANDARD,
    CubePolicy,
    frame_nbytes,
)


def test_presets_match_the_operating_table() -> None:
    assert STANDARD.frames_per_cube == 2000
    assert MBI.frames_per_cube == 250
    assert MBI_REDUCED.frames_per_cube == 500
    assert PRESETS["MBI"] is MBI
    assert STANDARD.cube_nbytes((536, 536), "uint16") == 2000 * 574_592  # 1.15 GB
    assert round(MBI.cube_nbytes((1096, 2236), "uint16") / 1e9, 2) == 1.23
    assert round(MBI_REDUCED.cube_nbytes((540, 2232), "uint16") / 1e9, 2) == 1.21


def test_for_frame_targets_bytes() -> None:
    p = CubePolicy.for_frame((1096, 2236), "uint16")
    assert p.frames_per_cube == 245
    assert abs(p.cube_nbytes((1096, 2236), "uint16") - 1.2e9) < 5e6
    assert CubePolicy.for_frame((4096, 4096), "float64", 1.0).frames_per_cube == 1
    assert CubePolicy.for_frame((536, 536), "uint16", 2e9, cubes=3).cubes == 3


def test_max_bytes_caps_frames() -> None:
    p = CubePolicy(frames_per_cube=1000, max_bytes=10 * 574_592)
    assert p.frames_for((536, 536), "uint16") == 10
    assert CubePolicy(frames_per_cube=5, max_bytes=1).frames_for((4, 4), "uint16") == 1


def test_adaptive_timeout() -> None:
    p = CubePolicy(frames_per_cube=10)
    assert p.effective_timeout(None) == MIN_TIMEOUT
    assert p.effective_timeout(0.001) == MIN_TIMEOUT
    assert p.effective_timeout(10.0) == 50.0  # slow exposures never give 1-frame files
    assert CubePolicy(frames_per_cube=10, timeout=0.5).effective_timeout(10.0) == 0.5
    assert CubePolicy(frames_per_cube=10, timeout=3).timeout == 3.0


@given(
    frames=st.integers(1, 10**6),
    cubes=st.one_of(st.just(-1), st.integers(1, 10**6)),
    timeout=st.one_of(st.none(), st.floats(0.001, 1e4)),
    max_bytes=st.one_of(st.none(), st.integers(1, 10**12)),
)
def test_dict_round_trip(frames, cubes, timeout, max_bytes) -> None:
    p = CubePolicy(frames_per_cube=frames, cubes=cubes, timeout=timeout, max_bytes=max_bytes)
    assert CubePolicy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert attrs.evolve(p, cubes=-1).cubes == -1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames_per_cube": 0}, "frames_per_cube"),
        ({"frames_per_cube": 2.5}, "frames_per_cube"),
        ({"frames_per_cube": True}, "frames_per_cube"),
        ({"frames_per_cube": 10, "cubes": 0}, "cubes"),
        ({"frames_per_cube": 10, "cubes": -2}, "cubes"),
        ({"frames_per_cube": 10, "timeout": 0}, "timeout"),
        ({"frames_per_cube": 10, "timeout": float("nan")}, "timeout"),
        ({"frames_per_cube": 10, "timeout": "2"}, "timeout"),
        ({"frames_per_cube": 10, "max_bytes": 0}, "max_bytes"),
    ],
)
def test_bad_values(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        CubePolicy(**kwargs)


def test_bad_dicts_and_frames() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        CubePolicy.from_dict({"frames_per_cube": 3, "size": 2})
    with pytest.raises(ConfigError, match="required"):
        CubePolicy.from_dict({"cubes": 3})
    with pytest.raises(ConfigError, match="mapping"):
        CubePolicy.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="shape"):
        frame_nbytes((0, 3), "uint16")
    with pytest.raises(ConfigError, match="target_bytes"):
        CubePolicy.for_frame((3, 3), "uint16", 0)
    with pytest.raises(ConfigError):
        CubePolicy.for_frame((3, 3), "notadtype")


@pytest.mark.parametrize(
    "fields",
    [
        {"frames_per_cube": 99999999999999999999999999999},
        {"frames_per_cube": 2**31},
        {"frames_per_cube": 1, "cubes": 2**31},
        {"frames_per_cube": 1, "timeout": 1e300},
        {"frames_per_cube": 1, "timeout": 86400.5},
        {"frames_per_cube": 1, "max_bytes": 2**63},
    ],
)
def test_values_past_the_bounds_are_refused(fields: dict[str, object]) -> None:
    # issue 13 item 6: an oversized value overflowed in the logger's threads
    with pytest.raises(ConfigError, match="CubePolicy"):
        CubePolicy(**fields)  # type: ignore[arg-type]
    assert CubePolicy(frames_per_cube=2**31 - 1, cubes=2**31 - 1, timeout=86400.0).cubes > 0
