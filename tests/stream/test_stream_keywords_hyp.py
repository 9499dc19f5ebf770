"""Property tests: any valid keyword round-trips exactly; any invalid one writes nothing."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vampires.errors import KeywordError
from vampires.stream import Stream

PRINTABLE = "".join(c for c in string.printable if c.isprintable())
names = st.text(alphabet=PRINTABLE.replace(" ", ""), min_size=1, max_size=15)
comments = st.text(alphabet=PRINTABLE, max_size=79)
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=PRINTABLE, max_size=15).filter(lambda s: s not in ("#TRUE#", "#FALSE#")),
    st.booleans(),
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@SETTINGS
@given(cards=st.dictionaries(names, st.tuples(values, comments), max_size=6))
def test_valid_keywords_round_trip(cards):
    with Stream.create("hyp", 1, np.uint8, nkeywords=6, exist_ok=True) as s:
        for name in list(s.keywords):
            del s.keywords[name]
        s.write(np.zeros(1, np.uint8), keywords=cards)
        with Stream.open("hyp") as r:
            got = {n: (v, c) for n, v, c in r.keywords.cards()}
    assert got.keys() == cards.keys()
    for name, (value, comment) in cards.items():
        assert same(value, got[name][0]), (name, value, got[name][0])
        assert got[name][1] == comment


bad_names = st.one_of(
    st.text(alphabet=PRINTABLE, min_size=16, max_size=30),
    st.text(min_size=1, max_size=10).filter(lambda s: not (s.isascii() and s.isprintable())),
    st.text(alphabet=PRINTABLE, min_size=1, max_size=10).filter(lambda s: " " in s),
    st.just(""),
)
bad_values = st.one_of(
    st.none(),
    st.binary(),
    st.lists(st.integers(), max_size=2),
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
    st.text(alphabet=PRINTABLE, min_size=16, max_size=40),
    st.text(min_size=1, max_size=10).filter(lambda s: not (s.isascii() and s.isprintable())),
)


@SETTINGS
@given(
    bad=st.one_of(
        st.tuples(bad_names, values, comments),
        st.tuples(names, bad_values, comments),
        st.tuples(names, values, st.text(alphabet=PRINTABLE, min_size=80, max_size=120)),
    )
)
def test_invalid_keywords_write_nothing(bad):
    name, value, comment = bad
    with Stream.create("hypbad", 1, np.uint8, nkeywords=4, exist_ok=True) as s:
        s.keywords.update({"KEEP": (1, "kept")})
        version = s.keywords.version
        with pytest.raises(KeywordError):
            s.keywords.update({"OTHER": 2, name: (value, comment)})
        assert s.keywords.version == version
        assert s.keywords.cards() == [("KEEP", 1, "kept")]
