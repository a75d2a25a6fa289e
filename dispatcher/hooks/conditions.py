"""Load-time checks of conditions, the same for a hook's `filter` and its `response.expect`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dispatcher.hooks.credentials import Finding, items
from dispatcher.model.condition import OPERATORS
from dispatcher.pipeline.conditions import compile_pattern
from dispatcher.pipeline.render.mapping import event_path
from dispatcher.pipeline.render.paths import ROOT_PATHS, parse_path

Where = tuple[str | int, ...]
PathCheck = Callable[[str], None]  # raises ValueError with the message to report


def filter_problems(raw: dict[str, Any]) -> Iterator[Finding]:
    """What is wrong with the hook's `filter`: paths into the event, operators, patterns."""
    for i, entry in items(raw.get("filter")):
        if isinstance(entry, dict):
            yield from condition_problems(("filter", i), entry, _event_path)


def expect_problems(response: dict[str, Any]) -> Iterator[Finding]:
    """What is wrong with `response.expect`: paths into the response, operators, patterns."""
    check = _text_path if response.get("format") == "text" else _response_path
    for i, entry in items(response.get("expect")):
        if isinstance(entry, dict):
            yield from condition_problems(("response", "expect", i), entry, check)


def condition_problems(
    where: Where, entry: dict[str, Any], path_check: PathCheck
) -> Iterator[Finding]:
    """What is wrong with one condition (its shape is the schema's to check)."""
    given = [name for name in OPERATORS if name in entry]
    if not given:
        yield where, f"checks nothing: give one of {', '.join(OPERATORS)}"
    elif entry.get("exists") is False and len(given) > 1:
        yield where, "exists: false with another operator can never hold"
    path = entry.get("path", "")
    if isinstance(path, str):
        try:
            path_check(path)
        except ValueError as exc:
            yield (*where, "path"), str(exc)
    pattern = entry.get("matches")
    if isinstance(pattern, str):
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            yield (*where, "matches"), f"invalid regular expression (RE2 syntax): {exc}"


def _event_path(path: str) -> None:
    try:
        event_path(path)
    except ValueError as exc:
        raise ValueError(f"invalid path: {exc}") from None


def _response_path(path: str) -> None:
    try:
        parse_path(path)
    except ValueError as exc:
        raise ValueError(f"invalid path: {exc}") from None


def _text_path(path: str) -> None:
    if path.strip() not in ROOT_PATHS:
        raise ValueError("a text response has no paths: use '' or '.' (the whole body)")
