"""Operational events (contract section 9): a decision on a hook's health as a CloudEvent. Pure.

`dispatcher.hook.failing`, `dispatcher.hook.paused` and `dispatcher.hook.resumed`, structured
mode, on the operations topic, keyed by the hook id. The event id is derived from the hook, the
type and the decision's `since`, so two workers deciding at once write the same event, and a
subscribed hook's `webhook-id` (event id + hook id) lets its receiver drop the second.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from dispatcher.model.health import Decision
from dispatcher.model.moments import iso

SOURCE = "/dugaa/dispatcher"
TYPES = {
    "failing": "dispatcher.hook.failing",
    "paused": "dispatcher.hook.paused",
    "resumed": "dispatcher.hook.resumed",
}
NAMESPACE = uuid.UUID("7f0c61f2-9a3e-4d8b-9d55-3c1f1f6a2b10")
CONTENT_TYPE = b"application/cloudevents+json"


def event_id(hook_id: str, event_type: str, since: float) -> str:
    """The same id for the same (hook, type, since), whoever writes it."""
    return str(uuid.uuid5(NAMESPACE, f"{hook_id}|{event_type}|{round(since * 1000)}"))


def notice(decision: Decision) -> dict[str, Any] | None:
    """The CloudEvent telling of `decision`; None for a hook healthy again (no event)."""
    event_type = TYPES.get(decision.state)
    if event_type is None:
        return None
    data: dict[str, Any] = {
        "hook": decision.hook_id,
        "tenant": decision.tenant,
        "state": decision.state,
        "since": iso(decision.since),
        "at": iso(decision.at),
        "reason": decision.reason,
        "last_error": decision.last_error or None,
    }
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id(decision.hook_id, event_type, decision.since),
        "type": event_type,
        "source": SOURCE,
        "subject": decision.hook_id,
        "time": iso(decision.at),
        "datacontenttype": "application/json",
        "data": data,
    }
    if decision.tenant is not None:
        event["tenant"] = decision.tenant  # a tenant's notifier hooks hear of its hooks only
    return event


def notice_value(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
