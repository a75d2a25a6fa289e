"""Property tests: `json_body` (orjson for plain documents) writes the same values as the
exact writer `json_text` for any document, and refuses or writes exactly what it does."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.pipeline.render.convert import json_text
from dispatcher.pipeline.render.formats import json_body

PROPERTY = settings(deadline=None, max_examples=300)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits: json_text writes those
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(),
    st.text(st.characters(categories=["Cs"]), max_size=2),  # lone surrogates, as JSON escapes
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def read(text: bytes | str) -> Any:
    """JSON read back with every number exact (a float and its decimal digits compare equal)."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


@PROPERTY
@given(DOCUMENTS)
def test_json_body_writes_the_values_json_text_writes(document: Any) -> None:
    assert read(json_body(document)) == read(json_text(document))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf])
@pytest.mark.parametrize("where", ["alone", "in an object", "nested in a list"])
def test_non_finite_numbers_are_refused_wherever_they_are(bad: float, where: str) -> None:
    document = {"alone": bad, "in an object": {"a": bad}, "nested in a list": {"a": [1, [bad]]}}
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        json_body(document[where])


def test_what_orjson_would_write_its_own_way_is_written_as_json_text_writes_it() -> None:
    moment = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    assert json_body({"at": moment}) == json_text({"at": moment}).encode()
    assert json_body({1: "key not text"}) == b'{"1":"key not text"}'
    assert json_body({"big": 2**65}) == b'{"big":36893488147419103232}'


def test_decimals_are_written_digit_for_digit() -> None:
    assert json_body({"amount": Decimal("100.10"), "tiny": Decimal("1E-7")}) == (
        b'{"amount":100.10,"tiny":0.0000001}'
    )
