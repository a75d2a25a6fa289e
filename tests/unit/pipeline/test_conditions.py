"""The one condition engine: every operator, decimals, missing paths and type mismatches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dispatcher.model.condition import Condition
from dispatcher.pipeline.conditions import compile_pattern, failure, failures, holds

EVENT: dict[str, Any] = {
    "type": "order.shipped",
    "subject": "order-7",
    "data": {
        "country": "KE",
        "total": 100.10,
        "count": 3,
        "price": Decimal("19.990"),
        "code": "0042",
        "big": 12345678901234567890,
        "paid": True,
        "note": None,
        "tags": ["a", "b"],
        "nan": float("nan"),
    },
}


def check(**raw: Any) -> str | None:
    return failure(Condition.from_dict(raw), EVENT)


@pytest.mark.parametrize(
    "raw",
    [
        {"path": "data.country", "equals": "KE"},
        {"path": "data.count", "equals": 3.0},
        {"path": "data.total", "equals": 100.1},
        {"path": "data.price", "equals": 19.99},
        {"path": "data.count", "equals": "3"},
        {"path": "data.paid", "equals": True},
        {"path": "data.paid", "equals": "true"},
        {"path": "data.tags", "equals": ["a", "b"]},
        {"path": "data.country", "not_equals": "TZ"},
        {"path": "data.paid", "not_equals": 1},
        {"path": "data.country", "in": ["KE", "TZ"]},
        {"path": "data.count", "in": [1, 3]},
        {"path": "data.country", "not_in": ["US", "GB"]},
        {"path": "data.country", "exists": True},
        {"path": "data.note", "exists": True},
        {"path": "data.missing", "exists": False},
        {"path": "subject", "matches": "^order-\\d+$"},
        {"path": "data.count", "matches": "^3$"},
        {"path": "data.total", "gt": 100},
        {"path": "data.total", "gte": 100.1},
        {"path": "data.total", "lt": 100.11},
        {"path": "data.total", "lte": 100.10},
        {"path": "data.price", "gte": 19.99},
        {"path": "data.price", "lte": 19.99},
        {"path": "data.big", "gt": 12345678901234567889},
        {"path": "data.count", "gte": 3, "lte": 3, "in": [3]},
    ],
)
def test_conditions_that_hold(raw: dict[str, Any]) -> None:
    assert check(**raw) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"path": "data.country", "equals": "TZ"}, 'expected data.country to equal "TZ", got "KE"'),
        ({"path": "data.paid", "equals": 1}, "expected data.paid to equal 1, got true"),
        ({"path": "data.count", "equals": True}, "expected data.count to equal true, got 3"),
        ({"path": "data.country", "not_equals": "KE"}, 'expected data.country not to equal "KE"'),
        ({"path": "data.count", "not_equals": 3.0}, "expected data.count not to equal 3.0"),
        ({"path": "data.country", "in": ["TZ"]}, 'expected data.country to be one of "TZ", got'),
        ({"path": "data.country", "not_in": ["KE"]}, 'expected data.country not to be one of "KE"'),
        ({"path": "data.country", "exists": False}, "expected data.country to be absent"),
        ({"path": "data.nope", "exists": True}, "expected data.nope to exist"),
        ({"path": "subject", "matches": "^invoice"}, "expected subject to match '^invoice'"),
        ({"path": "data.total", "gt": 100.1}, "expected data.total to be > 100.1, got 100.1"),
        ({"path": "data.total", "lt": 100.1}, "expected data.total to be < 100.1"),
        ({"path": "data.price", "gt": 19.99}, "expected data.price to be > 19.99"),
        ({"path": "data.big", "lte": 12345678901234567889}, "expected data.big to be <="),
    ],
)
def test_conditions_that_fail_say_why(raw: dict[str, Any], message: str) -> None:
    found = check(**raw)
    assert found is not None
    assert found.startswith(message)


def test_decimals_are_compared_exactly_not_as_binary_floats() -> None:
    document = {"data": {"x": 0.1 + 0.2, "y": 0.3, "z": Decimal("0.30")}}
    assert failure(Condition.from_dict({"path": "data.x", "gt": 0.3}), document) is None
    assert failure(Condition.from_dict({"path": "data.y", "gt": 0.3}), document) is not None
    assert failure(Condition.from_dict({"path": "data.z", "equals": 0.3}), document) is None
    assert failure(Condition.from_dict({"path": "data.y", "equals": 0.30000000000000004}), document)


@pytest.mark.parametrize(
    "operator", ["equals", "not_equals", "in", "not_in", "matches", "gt", "lte"]
)
def test_a_missing_path_fails_every_operator_but_exists_false(operator: str) -> None:
    operand: Any = (
        ["x"]
        if operator in ("in", "not_in")
        else ("x" if operator in ("equals", "not_equals", "matches") else 1)
    )
    assert check(path="data.nowhere", **{operator: operand}) == (
        "expected data.nowhere to be present"
    )
    assert check(path="data.country.deeper", **{operator: operand}) is not None


@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("path", ["data.code", "data.paid", "data.tags", "data.note", "data.nan"])
def test_a_value_that_is_not_a_finite_number_is_never_ordered(operator: str, path: str) -> None:
    # "0042" is text: a string is never compared with a number, whichever way it would go.
    message = check(path=path, **{operator: 0})
    assert message is not None
    assert "to be a number" in message


def test_a_numeric_text_is_a_number_in_xml_documents_only() -> None:
    condition = Condition.from_dict({"path": "total", "gte": 10})
    assert failure(condition, {"total": "12.50"}, xml=True) is None
    assert failure(condition, {"total": "12.50"}) is not None
    assert failure(condition, {"total": "lots"}, xml=True) is not None


def test_a_numeric_text_equals_a_number_in_xml_documents_only() -> None:
    """`equals` and `in` read it as `gte` does; elsewhere a number compares with a text by its
    text (an event's "100.00" is not 100)."""
    condition = Condition.from_dict({"path": "total", "equals": 100})
    assert failure(condition, {"total": "100.00"}, xml=True) is None
    assert failure(condition, {"total": "100.00"}) is not None
    assert failure(condition, {"total": "100"}) is None  # by its text
    assert failure(condition, {"total": "lots"}, xml=True) is not None
    within = Condition.from_dict({"path": "code", "in": [0, 5]})
    assert failure(within, {"code": "00"}, xml=True) is None
    assert failure(within, {"code": "00"}) is not None
    as_text = Condition.from_dict({"path": "code", "equals": "0"})
    assert failure(as_text, {"code": "00"}, xml=True) is not None  # a text operand: its text


def test_exists_false_on_a_present_null_fails() -> None:
    assert check(path="data.note", exists=False) == "expected data.note to be absent"


def test_matches_searches_the_text_of_numbers_and_booleans() -> None:
    assert check(path="data.paid", matches="^true$") is None
    assert check(path="data.tags", matches="^x") is not None


def test_matching_is_linear_time_on_a_pattern_that_backtracks_in_python() -> None:
    # (a+)+$ on "aaaa...b" takes exponential time with Python's re; RE2 answers at once.
    document = {"data": {"s": "a" * 5000 + "b"}}
    assert failure(Condition.from_dict({"path": "data.s", "matches": "^(a+)+$"}), document)


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=x)y", "(?<!x)y", "(unclosed", "a{2000}{2000}"])
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        compile_pattern(pattern)
    message = check(path="subject", matches=pattern)
    assert message is not None
    assert "the pattern is invalid" in message


def test_holds_needs_every_condition_and_failures_lists_each() -> None:
    ok = Condition.from_dict({"path": "data.country", "in": ["KE", "TZ"]})
    big = Condition.from_dict({"path": "data.total", "gte": 100})
    small = Condition.from_dict({"path": "data.total", "lt": 50})
    assert holds([ok, big], EVENT)
    assert not holds([ok, small], EVENT)
    assert holds([], EVENT)
    assert failures([small, ok, small], EVENT) == [failure(small, EVENT)] * 2


def test_a_condition_is_written_back_as_it_was_read() -> None:
    raw = {"path": "data.total", "gte": 100, "in": [100, 200]}
    assert Condition.from_dict(raw).to_dict() == {
        "path": "data.total",
        "in": [100, 200],
        "gte": 100,
    }


def test_matches_on_text_with_a_lone_surrogate_reads_it_as_a_replacement_character() -> None:
    """A JSON `\\ud800` escape puts a lone surrogate in an event's data or an answer: RE2, which
    takes UTF-8, raised on it, and the pair was taken in as an `internal` failure."""
    document = {"data": {"x": "\ud800eu"}}
    assert failure(Condition.from_dict({"path": "data.x", "matches": "eu$"}), document) is None
    said = failure(Condition.from_dict({"path": "data.x", "matches": "^us"}), document)
    assert said == "expected data.x to match '^us', got \"\ufffdeu\""
    said.encode("utf-8")  # fit for a result record or a log line
