"""A dead letter's metadata headers read into a schemas/deadletter.avsc record.

The schema is the one map from header to field: each field names its header in `header`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatcher.kafka.avro.schemas import bundled
from dispatcher.model.event import Record
from dispatcher.model.moments import epoch_millis


def header_fields() -> Mapping[str, str]:
    """Header name -> field name, in schema order."""
    return {field["header"]: field["name"] for field in bundled("deadletter").parsed["fields"]}


def dead_letter_fields(record: Record) -> dict[str, Any]:
    """The metadata of a dead letter as deadletter.avsc fields; `ValueError` on a missing or
    malformed header (an optional one may be absent or empty)."""
    fields: dict[str, Any] = {}
    for field in bundled("deadletter").parsed["fields"]:
        raw = record.header(field["header"])
        text = raw.decode("utf-8", "replace") if raw is not None else None
        fields[field["name"]] = _typed(field, text)
    return fields


def _typed(field: Mapping[str, Any], text: str | None) -> Any:
    kind = field["type"]
    optional = isinstance(kind, list) and "null" in kind
    if not text:
        if optional:
            return None
        if text is None:
            raise ValueError(f"dead letter lacks header {field['header']}")
    base = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    if isinstance(base, Mapping) and base.get("logicalType") == "timestamp-millis":
        return epoch_millis(text or "")
    if base in ("int", "long"):
        try:
            return int(text or "")
        except ValueError:
            raise ValueError(f"header {field['header']} is not a number: {text!r}") from None
    return text or ""
