"""The shared argument checks (vampires._checks)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from vampires._checks import check_int, check_seconds, int_field, seconds_field
from vampires.errors import ConfigError, StreamError


def test_check_int_accepts_python_and_numpy_integers_in_range() -> None:
    assert check_int(3, "n", 1, 16) == 3
    assert type(check_int(np.int64(16), "n", 1, 16)) is int
    assert check_int(-5, "n") == -5


@pytest.mark.parametrize("bad", [0, 17, True, 2.0, "3", None])
def test_check_int_rejects_with_the_rule_in_the_message(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"n must be an integer in 1\.\.16 \(got "):
        check_int(bad, "n", 1, 16)


def test_check_int_raises_the_callers_error_type() -> None:
    with pytest.raises(StreamError, match="an integer >= 1"):
        check_int(0, "slots", 1, error=StreamError)


def test_check_seconds_bounds_open_and_closed() -> None:
    assert check_seconds(1, "t") == 1.0
    assert check_seconds(0, "t", lo_open=False) == 0.0
    with pytest.raises(ConfigError, match=r"t must be a number of seconds in \(0, 3600\]"):
        check_seconds(0, "t")
    for bad in (float("nan"), float("inf"), 3601, -1, True, "1"):
        with pytest.raises(ConfigError):
            check_seconds(bad, "t")


def test_field_validators_name_the_owner_and_field() -> None:
    @attrs.define
    class Policy:
        frames: int = attrs.field(validator=int_field("Policy", 1, 10))
        every: float | None = attrs.field(
            default=None, validator=seconds_field("Policy", optional=True)
        )

    assert Policy(5).every is None
    with pytest.raises(ConfigError, match=r"Policy: 'frames' must be an integer in 1\.\.10"):
        Policy(0)
    with pytest.raises(ConfigError, match=r"Policy: 'every' must be a number of seconds"):
        Policy(1, -2.0)


def test_check_bool_and_check_positive() -> None:
    from vampires._checks import check_bool, check_positive, positive_field

    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(ConfigError, match=r"flag must be True or False \(got 'disable'\)"):
        check_bool("disable", "flag")
    assert check_positive(2, "x") == 2.0
    with pytest.raises(ConfigError, match=r"x must be a number > 0 \(got 0\)"):
        check_positive(0, "x")
    with pytest.raises(ConfigError, match="x must be finite"):
        check_positive(float("inf"), "x")
    assert check_positive(float("inf"), "x", finite=False) == float("inf")
    for bad in (True, "1", float("nan"), -1):
        with pytest.raises(ConfigError):
            check_positive(bad, "x")

    @attrs.define
    class Options:
        fps: float = attrs.field(validator=positive_field("demo"))

    with pytest.raises(ConfigError, match=r"demo: 'fps' must be a number > 0"):
        Options(0)
