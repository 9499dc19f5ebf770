"""Argument checks shared by every package: one rule per kind of value.

Each entry point validates what it receives and raises a clear error naming the
argument, its allowed range and the value it got. The plain functions return the
value normalised (``int``, ``float``); the ``*_field`` factories wrap them as
attrs validators for value classes. ``error`` picks the exception type of the
caller's package (``ConfigError`` by default, ``StreamError`` in ``stream``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from vampires.errors import ConfigError, VampiresError

if TYPE_CHECKING:
    import attrs

#: A shared-memory folder as every API takes it: ``None`` is the default
#: (``$MILK_SHM_DIR`` or ``/milk/shm``, see :func:`vampires.stream.shm_dir`).
ShmDir: TypeAlias = str | os.PathLike[str] | None

ErrorType: TypeAlias = type[VampiresError]
_Validator: TypeAlias = Callable[[Any, Any, Any], None]


def _numpy() -> Any:  # noqa: ANN401 - the numpy module, if loaded
    # A NumPy scalar exists only once numpy is imported: looking it up (not
    # importing it) keeps numpy off the start-up path of the thin commands.
    return sys.modules.get("numpy")


def is_int(value: object) -> bool:
    """Tell whether ``value`` is an integer (Python or NumPy), not a bool."""
    if isinstance(value, int):
        return not isinstance(value, bool)
    np = _numpy()
    return np is not None and isinstance(value, np.integer)


def is_number(value: object) -> bool:
    """Tell whether ``value`` is a real number (int or float, NumPy too), not a bool."""
    if isinstance(value, int | float):
        return not isinstance(value, bool)
    np = _numpy()
    return np is not None and isinstance(value, np.integer | np.floating)


def _fail(error: ErrorType, what: str, rule: str, value: object) -> None:
    msg = f"{what} must be {rule} (got {value!r})"
    raise error(msg)


def check_int(
    value: object,
    what: str,
    lo: int | None = None,
    hi: int | None = None,
    *,
    error: ErrorType = ConfigError,
) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``lo..hi`` (either end open if None).

    The message reads ``"<what> must be an integer in 1..16 (got 0)"``.
    """
    if lo is not None and hi is not None:
        rule = f"an integer in {lo}..{hi}"
    elif lo is not None:
        rule = f"an integer >= {lo}"
    elif hi is not None:
        rule = f"an integer <= {hi}"
    else:
        rule = "an integer"
    if not is_int(value):
        _fail(error, what, rule, value)
    n: int = int(value)  # type: ignore[call-overload]
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        _fail(error, what, rule, value)
    return n


def check_seconds(
    value: object,
    what: str,
    lo: float = 0.0,
    hi: float = 3600.0,
    *,
    lo_open: bool = True,
    error: ErrorType = ConfigError,
) -> float:
    """Return ``value`` as a ``float`` if it is a finite number of seconds in ``(lo, hi]``.

    ``lo_open=False`` admits ``lo`` itself (``[lo, hi]``). The message reads
    ``"<what> must be a number of seconds in (0, 3600] (got -1)"``.
    """
    rule = f"a number of seconds in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if not is_number(value):
        _fail(error, what, rule, value)
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo):
        _fail(error, what, rule, value)
    return x


def int_field(
    owner: str, lo: int | None = None, hi: int | None = None, *, optional: bool = False
) -> _Validator:
    """Make an attrs validator: an integer in ``lo..hi`` (or None if ``optional``)."""

    def validate(_inst: object, attr: attrs.Attribute[object], value: object) -> None:
        if optional and value is None:
            return
        check_int(value, f"{owner}: {attr.name!r}", lo, hi)

    return validate


def seconds_field(
    owner: str,
    lo: float = 0.0,
    hi: float = 3600.0,
    *,
    lo_open: bool = True,
    optional: bool = False,
) -> _Validator:
    """Make an attrs validator: a number of seconds in ``(lo, hi]`` (or None if ``optional``)."""

    def validate(_inst: object, attr: attrs.Attribute[object], value: object) -> None:
        if optional and value is None:
            return
        check_seconds(value, f"{owner}: {attr.name!r}", lo, hi, lo_open=lo_open)

    return validate


def check_bool(value: object, what: str, *, error: ErrorType = ConfigError) -> bool:
    """Return ``value`` as a ``bool`` if it is one (Python or NumPy); strings are refused.

    The message reads ``"<what> must be True or False (got 'disable')"``.
    """
    np = _numpy()
    if not (isinstance(value, bool) or (np is not None and isinstance(value, np.bool_))):
        _fail(error, what, "True or False", value)
    return bool(value)


def check_positive(
    value: object, what: str, *, finite: bool = True, error: ErrorType = ConfigError
) -> float:
    """Return ``value`` as a ``float`` if it is a number > 0 (and finite, unless told not to).

    The messages read ``"<what> must be a number > 0 (got 0)"`` and
    ``"<what> must be finite (got inf)"``.
    """
    if not is_number(value) or not value > 0:  # type: ignore[operator]
        _fail(error, what, "a number > 0", value)
    x = float(value)  # type: ignore[arg-type]
    if finite and not math.isfinite(x):
        _fail(error, what, "finite", value)
    return x


def positive_field(owner: str, *, finite: bool = True) -> _Validator:
    """Make an attrs validator: a number > 0 (see :func:`check_positive`)."""

    def validate(_inst: object, attr: attrs.Attribute[object], value: object) -> None:
        check_positive(value, f"{owner}: {attr.name!r}", finite=finite)

    return validate
