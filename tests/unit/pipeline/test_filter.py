"""The filter stage: an event is for a hook only when every condition of its filter holds."""

from __future__ import annotations

from typing import Any

from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.filter import admit


def hook(hook_id: str, *conditions: dict[str, Any]) -> Hook:
    return Hook.from_dict(
        {
            "id": hook_id,
            "events": ["order.shipped"],
            "url": "https://x.example/",
            "filter": list(conditions),
        }
    )


def event(**data: Any) -> Event:
    return Event(id="e1", type="order.shipped", source="shop", subject="o-1", data=data)


SMS_KE = hook(
    "sms-ke", {"path": "data.country", "in": ["KE", "TZ"]}, {"path": "data.total", "gte": 100}
)
EVERYTHING = hook("audit")


def test_an_event_passing_every_condition_is_admitted() -> None:
    admitted, filtered = admit([SMS_KE, EVERYTHING], event(country="TZ", total=100))
    assert [h.id for h in admitted] == ["sms-ke", "audit"]
    assert filtered == []


def test_failing_any_one_condition_filters_the_event_out_for_that_hook_only() -> None:
    for data in (
        {"country": "US", "total": 500},
        {"country": "KE", "total": 99.99},
        {"country": "KE"},
    ):
        admitted, filtered = admit([SMS_KE, EVERYTHING], event(**data))
        assert [h.id for h in admitted] == ["audit"]
        assert filtered == ["sms-ke"]


def test_a_filter_can_look_at_any_event_attribute() -> None:
    by_subject = hook(
        "subject",
        {"path": "subject", "matches": "^o-"},
        {"path": "type", "equals": "order.shipped"},
    )
    assert admit([by_subject], event())[1] == []
