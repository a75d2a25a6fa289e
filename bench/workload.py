"""The events every contender consumes and the hooks they deliver to, in one place.

The dispatcher gets the hook as configuration; the naive loop and the Quix app do the same work
by hand in `render_and_sign`: the same field mapping, body and Standard Webhooks signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

EVENT_TYPE = "order.shipped"
HMAC_SECRET = "whsec_" + base64.b64encode(b"dugaa-bench-secret-0123456789abcd").decode()
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"dugaa-bench-key-0123456789abcdef").decode().rstrip("=")
USER_AGENT = "bench-alternative/1.0"
FIELDS = [
    {"name": "to", "from": "data.customer.phone", "required": True},
    {"name": "text", "template": "Order {data.order_id} shipped"},
    {"name": "sender", "value": "DUGAA"},
    {"name": "amount", "from": "data.total", "type": "decimal"},
    {"name": "reference", "from": "id"},
]


def event(tag: str, index: int, sent_at: float | None = None) -> dict[str, Any]:
    """One CloudEvent (structured mode); `data.sent_at` is when it was produced."""
    return {
        "specversion": "1.0",
        "id": f"{tag}-{index}",
        "type": EVENT_TYPE,
        "source": "/dugaa/bench",
        "time": "2026-11-29T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "order_id": f"ORD-{index:07d}",
            "customer": {"name": "Wanjiru Kamau", "phone": f"+2547{index % 100_000_000:08d}"},
            "total": round(100 + (index % 9000) / 100, 2),
            "currency": "KES",
            "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}],
            "sent_at": sent_at if sent_at is not None else time.time(),
        },
    }


# what a hook of a payment provider checks in its answer (nginx's `/realistic`) and keeps of it
REALISTIC_CHECKS = {
    "response": {
        "format": "json",
        "expect": [{"path": "status", "equals": "succeeded"}],
        "capture": {"charge_id": "id", "receipt": "receipt_url"},
    }
}


def hook(hook_id: str, url: str, **extra: Any) -> dict[str, Any]:
    """A hook as the dispatcher's hooks file has it: field mapping and an HMAC signature."""
    return {
        "id": hook_id,
        "events": [EVENT_TYPE],
        "url": url,
        "format": "json",
        "fields": FIELDS,
        "auth": {"type": "hmac", "secret": HMAC_SECRET},
        **extra,
    }


def hook_ids(kind: str, urls: str) -> list[str]:
    """The hook ids an alternative writes in its results: `kind` for the first URL, then `kind.N`."""
    return [kind if i == 0 else f"{kind}.{i}" for i in range(len(urls.split(",")))]


def _secret_bytes() -> bytes:
    return base64.b64decode(HMAC_SECRET.removeprefix("whsec_"))


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def render_and_sign(
    cloud_event: dict[str, Any], hook_id: str, dumps: Callable[[Any], bytes] = compact_json
) -> tuple[bytes, dict[str, str]]:
    """The body and headers the naive loop, the Quix app and the floor send (what the hook
    describes); `dumps` makes the body's JSON (the floor's is orjson's)."""
    data = cloud_event["data"]
    body = dumps(
        {
            "to": data["customer"]["phone"],
            "text": f"Order {data['order_id']} shipped",
            "sender": "DUGAA",
            "amount": data["total"],
            "reference": cloud_event["id"],
        }
    )
    message_id = f"{cloud_event['id']}:{hook_id}"
    timestamp = str(int(time.time()))
    digest = hmac.new(
        _secret_bytes(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return body, {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def result(cloud_event: dict[str, Any], hook_id: str, status: int | None) -> dict[str, Any]:
    """The result record the alternatives write (the fields the benchmark reads)."""
    ok = status is not None and 200 <= status < 300
    return {
        "event_id": cloud_event["id"],
        "hook_id": hook_id,
        "outcome": "delivered" if ok else "dead_lettered",
        "http_status": status,
        "completed_at": time.time(),
    }
