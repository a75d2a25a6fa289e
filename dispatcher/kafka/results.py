"""Read back the results topic: delivered webhook-ids (for replay) and recent outcomes per hook."""

from __future__ import annotations

import json
import logging
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.kafka.scan import Start, scan

log = logging.getLogger(__name__)


def read_result(value: bytes | None) -> dict[str, Any] | None:
    """A result record's fields (JSON or Avro), or None when it is neither."""
    if not value:
        return None
    if value[:1] == b"{":
        try:
            document = json.loads(value)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    try:
        from dispatcher.kafka.avro.results import read_result as read_avro

        return read_avro(value)
    except Exception:  # not a result this version can read: the caller skips it
        return None


def delivered_keys(settings: Settings, since_ms: int | None = None) -> set[str]:
    """The webhook-ids of every pair the results topic shows delivered (from `since_ms` on)."""
    keys: set[str] = set()
    unreadable = 0
    for record in scan(settings, settings.topics.results, Start(since_ms=since_ms)):
        result = read_result(record.value)
        if result is None:
            unreadable += 1
        elif result.get("outcome") == "delivered" and result.get("idempotency_key"):
            keys.add(str(result["idempotency_key"]))
    if unreadable:
        log.warning("%d result records could not be read", unreadable)
    return keys


def recent_outcomes(
    settings: Settings, hook_id: str, limit: int, window: int = 10_000
) -> list[dict[str, Any]]:
    """The newest `limit` results of `hook_id` among the last `window` records of each partition,
    newest first."""
    found: list[tuple[int, dict[str, Any]]] = []
    for record in scan(settings, settings.topics.results, Start(last=window)):
        result = read_result(record.value)
        if result is not None and result.get("hook_id") == hook_id:
            found.append((record.timestamp_ms or 0, result))
    found.sort(key=lambda item: item[0], reverse=True)
    return [_plain(result) for _, result in found[:limit]]


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values (Avro results carry datetimes)."""
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in result.items()}
