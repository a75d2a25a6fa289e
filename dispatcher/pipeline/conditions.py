"""The one condition engine: hook `filter` (on the event) and `response.expect` (on a response).

A condition is a path and one or more operators, all of which must hold:
- `exists: true|false`: whether the path is there (a present `null` exists);
- `equals`, `not_equals`, `in`, `not_in`: equality, where two numbers compare as exact decimals
  (`1 == 1.0`) and a number or boolean compares with a text by its text (`0` equals `"0"`), but
  a boolean never equals a number; in XML documents, whose every value is text, a numeric text
  compares with a number as the number it is (`100.00` equals 100);
- `matches`: an RE2 regular expression searched in the value's text: matching takes time linear in
  the text, and a pattern RE2 cannot run that way (backreferences, lookaround) is refused at load;
- `gt`, `gte`, `lt`, `lte`: the value must be a number and is compared as an exact decimal; a text
  is never compared with a number (except in XML documents, whose every value is text).
A missing path fails every operator but `exists: false`. Pure; nothing here raises for a document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

import re2

from dispatcher.model.condition import ORDERING, Condition
from dispatcher.pipeline.render.convert import text_of, to_decimal
from dispatcher.pipeline.render.paths import MISSING, ROOT_PATHS, lookup, parse_path
from dispatcher.pipeline.xmlvalues import local_path

SHOWN = 80  # characters of a value quoted in a failure message
MAX_PATTERN_MEMORY = 1 << 20  # bytes RE2 may spend on one compiled pattern
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = MAX_PATTERN_MEMORY
_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def holds(conditions: Iterable[Condition], document: Any) -> bool:
    """Whether every condition holds on `document` (stops at the first that does not; builds
    no message: this is the filter's per-event path)."""
    for condition in conditions:
        try:
            value = lookup(document, parse_path(condition.path))
        except ValueError:
            return False
        for operator, operand in condition.tests:
            if not _passes(operator, operand, value, False):
                return False
    return True


def failures(conditions: Iterable[Condition], document: Any, *, xml: bool = False) -> list[str]:
    """A message for each condition that does not hold on `document`."""
    found = (failure(c, document, xml=xml) for c in conditions)
    return [message for message in found if message is not None]


def failure(condition: Condition, document: Any, *, xml: bool = False) -> str | None:
    """Why `condition` does not hold on `document`, or None when it holds.

    With `xml`, index 0 of a single element is the element itself, a numeric text is a number,
    and a name's namespace prefix is left out (`soap:Body` is `Body`).
    """
    try:
        steps = parse_path(condition.path)
    except ValueError as exc:
        return f"invalid path {condition.path!r}: {exc}"
    if xml:
        steps = local_path(steps)
    value = lookup(document, steps, scalar_is_list=xml)
    for operator, operand in condition.tests:
        if not _passes(operator, operand, value, xml):
            where = "the body" if condition.path.strip() in ROOT_PATHS else condition.path
            return f"expected {where} {_why(operator, operand, value, xml)}"
    return None


def _passes(operator: str, operand: Any, value: Any, xml: bool) -> bool:
    """Whether `value` passes one test."""
    if operator == "exists":
        return bool(operand) == (value is not MISSING)
    if value is MISSING:
        return False
    if operator == "equals":
        return same(value, operand, xml=xml)
    if operator == "not_equals":
        return not same(value, operand, xml=xml)
    if operator in ("in", "not_in"):
        return any(same(value, choice, xml=xml) for choice in operand) == (operator == "in")
    if operator == "matches":
        try:
            pattern = compile_pattern(operand)
        except ValueError:
            return False
        text = _text(value)
        return text is not None and pattern.search(_encodable(text)) is not None
    if operator in ORDERING:
        number, limit = _number(value, xml), _number(operand, False)
        return number is not None and limit is not None and _ordered(operator, number, limit)
    return False


def _why(operator: str, operand: Any, value: Any, xml: bool) -> str:
    """The words after "expected PATH" for a test that `value` failed."""
    if operator == "exists":
        return f"to {'exist' if operand else 'be absent'}"
    if value is MISSING:
        return "to be present"
    got = f"got {_show(value)}"
    if operator == "equals":
        return f"to equal {_show(operand)}, {got}"
    if operator == "not_equals":
        return f"not to equal {_show(operand)}"
    if operator in ("in", "not_in"):
        choices = ", ".join(_show(choice) for choice in operand)
        return f"{'to' if operator == 'in' else 'not to'} be one of {choices}, {got}"
    if operator == "matches":
        try:
            compile_pattern(operand)
        except ValueError as exc:
            return f"to match {operand!r}, but the pattern is invalid: {exc}"
        return f"to match {operand!r}, {got}"
    if operator in ORDERING:
        symbol = _SYMBOLS[operator]
        if _number(value, xml) is None or _number(operand, False) is None:
            return f"to be a number {symbol} {_show(operand)}, {got}"
        return f"to be {symbol} {_show(operand)}, {got}"
    return f"to pass an unknown operator {operator!r}"


def same(actual: Any, expected: Any, *, xml: bool = False) -> bool:
    """Whether a value equals an expected one (see the module docstring); with `xml`, a numeric
    text equals a number it is numerically equal to (`100.00` equals 100, `00` is in [0])."""
    if xml and isinstance(actual, str) and _is_number(expected):
        number = _number(actual, True)
        if number is not None:
            return number == _number(expected, False)
    if isinstance(actual, str) or isinstance(expected, str):
        if isinstance(actual, str) and isinstance(expected, str):
            return actual == expected
        return _text(actual) == _text(expected)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    a, b = _number(actual, False), _number(expected, False)
    if a is not None and b is not None:
        return a == b
    return bool(actual == expected)


def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled with RE2; ValueError saying why RE2 refuses it."""
    return _compiled(pattern)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def _number(value: Any, text_is_number: bool) -> Decimal | None:
    """`value` as a finite decimal, or None when it is not a number."""
    if isinstance(value, bool) or (isinstance(value, str) and not text_is_number):
        return None
    if not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = to_decimal(value)
    except ValueError:
        return None
    return number if number.is_finite() else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _ordered(operator: str, number: Decimal, limit: Decimal) -> bool:
    if operator == "gt":
        return number > limit
    if operator == "gte":
        return number >= limit
    if operator == "lt":
        return number < limit
    return number <= limit


def _encodable(text: str) -> str:
    """`text` as RE2 can take it (UTF-8): a lone surrogate, which a JSON `\\ud800` escape puts in
    an event's data or an answer, stands as U+FFFD; RE2 raised on it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _text(value: Any) -> str | None:
    try:
        return text_of(value)
    except ValueError:
        return None


def _show(value: Any) -> str:
    text = _encodable(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
