"""Matching an event type to hooks: exact names, globs, disabled hooks, order and uniqueness."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str, *events: str, **extra: Any) -> Hook:
    return Hook.from_dict(
        {"id": hook_id, "events": list(events), "url": "https://x.example.com", **extra}
    )


def ids(index: HookIndex, event_type: str) -> list[str]:
    return [h.id for h in index.match(event_type)]


def test_an_exact_name_matches_only_that_type() -> None:
    index = HookIndex([hook("a", "order.shipped")])

    assert ids(index, "order.shipped") == ["a"]
    assert ids(index, "order.shipped.late") == []
    assert ids(index, "order.Shipped") == []
    assert ids(index, "order") == []


@pytest.mark.parametrize(
    ("pattern", "event_type", "matched"),
    [
        ("order.*", "order.shipped", True),
        ("order.*", "order.", True),
        ("order.*", "orders.shipped", False),
        ("order.*", "ORDER.shipped", False),
        ("*.shipped", "parcel.shipped", True),
        ("order.?", "order.a", True),
        ("order.?", "order.ab", False),
        ("order.[ab]", "order.b", True),
        ("order.[ab]", "order.c", False),
        ("*", "anything.at.all", True),
    ],
)
def test_glob_patterns_match_case_sensitively(pattern: str, event_type: str, matched: bool) -> None:
    index = HookIndex([hook("g", pattern)])

    assert ids(index, event_type) == (["g"] if matched else [])


def test_a_disabled_hook_never_matches_but_can_still_be_looked_up() -> None:
    off = hook("off", "order.shipped", "order.*", enabled=False)
    index = HookIndex([off, hook("on", "order.shipped")])

    assert ids(index, "order.shipped") == ["on"]
    assert ids(index, "order.created") == []
    assert index.get("off") == off
    assert len(index) == 2


def test_a_hook_matching_several_of_its_patterns_is_returned_once() -> None:
    index = HookIndex([hook("a", "order.shipped", "order.*", "*.shipped", "*")])

    assert ids(index, "order.shipped") == ["a"]


def test_hooks_come_in_definition_order_whether_exact_or_globbed() -> None:
    index = HookIndex(
        [
            hook("first", "order.*"),
            hook("second", "order.shipped"),
            hook("third", "*.shipped"),
            hook("fourth", "order.shipped"),
        ]
    )

    assert ids(index, "order.shipped") == ["first", "second", "third", "fourth"]
    assert ids(index, "order.created") == ["first"]


def test_repeated_matches_give_the_same_answer() -> None:
    index = HookIndex([hook("b", "order.*"), hook("a", "order.shipped")])

    first = index.match("order.shipped")
    assert index.match("order.shipped") == first
    assert [h.id for h in first] == ["b", "a"]


def test_an_empty_index_matches_nothing() -> None:
    index = HookIndex()

    assert index.match("order.shipped") == ()
    assert index.get("a") is None
    assert list(index) == []


def test_a_hook_with_a_tenant_sees_only_that_tenants_events() -> None:
    index = HookIndex(
        [
            hook("acme-sms", "order.shipped", tenant="acme"),
            hook("audit", "order.shipped"),
            hook("globex-all", "order.*", tenant="globex"),
            hook("acme-all", "*", tenant="acme"),
        ]
    )

    assert [h.id for h in index.match("order.shipped", "acme")] == ["acme-sms", "audit", "acme-all"]
    assert [h.id for h in index.match("order.shipped", "globex")] == ["audit", "globex-all"]
    assert [h.id for h in index.match("order.shipped", "initech")] == ["audit"]


def test_an_event_without_a_tenant_reaches_only_hooks_without_one() -> None:
    index = HookIndex([hook("acme", "order.shipped", tenant="acme"), hook("all", "order.*")])

    assert ids(index, "order.shipped") == ["all"]
    assert [h.id for h in index.match("order.shipped", None)] == ["all"]


def test_answers_stay_right_when_the_cache_starts_over() -> None:
    index = HookIndex([hook("a", "order.*", tenant="t1"), hook("b", "order.shipped")])
    for i in range(10_050):
        index.match(f"order.e{i}", "t1")

    assert [h.id for h in index.match("order.shipped", "t1")] == ["a", "b"]
    assert [h.id for h in index.match("order.shipped", "t2")] == ["b"]
