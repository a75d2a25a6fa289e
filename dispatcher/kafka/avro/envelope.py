"""Between decoded Avro values and `Event`: our envelope, the CloudEvents format, binary-mode data.

Decoded values become what hooks map from, JSON-like: bytes become base64 text, timestamps, dates
and UUIDs their ISO text; decimals stay `Decimal` (rendering writes their exact digits).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from dispatcher.errors import DecodeError
from dispatcher.model.event import Event, Record
from dispatcher.pipeline.decode import ce_attributes, check_depth, parse_json
from dispatcher.pipeline.render.convert import text_of

ATTRIBUTES = ("id", "type", "source", "specversion", "time", "subject", "datacontenttype")
EXTENSIONS = ("tenant", "traceparent", "tracestate")  # the extensions with a field of `Event`
ENVELOPE_FIELDS = frozenset(("id", "type", "source"))
CLOUDEVENTS_FIELDS = frozenset(("attribute", "data"))
MAX_EXACT_FLOAT = 2.0**53


def from_envelope(value: Mapping[str, Any]) -> Event:
    """The event in a decoded event.avsc record; its `specversion` defaults to 1.0. A producer's
    own envelope may type its `data` (a record, a map ...): that reaches hooks as binary-mode
    data in any schema does, JSON-like."""
    attributes = {name: plain(value.get(name)) for name in ATTRIBUTES}
    attributes["specversion"] = attributes["specversion"] or "1.0"
    extensions = value.get("extensions") or {}
    for name in EXTENSIONS:
        attributes[name] = extensions.get(name)
    for name, extension in extensions.items():
        if name not in attributes:  # a producer's own extension (a context attribute is none)
            attributes[name] = plain(extension)
    attributes["data"] = _event_data(value.get("data"), attributes["datacontenttype"], plain)
    return Event.from_dict(attributes)


def from_cloudevent(value: Mapping[str, Any]) -> Event:
    """The event in a record of the CloudEvents Avro format, read with record names on."""
    attribute = value["attribute"]
    attributes = {name: attribute.get(name) for name in (*ATTRIBUTES, *EXTENSIONS)}
    for name, extension in attribute.items():
        if name not in attributes:  # a producer's own extension: bytes as base64 text
            attributes[name] = plain(extension)
    attributes["data"] = _event_data(value["data"], attributes["datacontenttype"], _tree)
    return Event.from_dict(attributes)


def _event_data(raw: Any, content_type: str | None, tree: Callable[[Any], Any]) -> Any:
    """An Avro record's `data`: bytes or text read by its content type (`_data`), a typed value
    (a record, a map ...) made JSON-like by `tree`, no deeper than events may nest."""
    if isinstance(raw, bytes | str) or raw is None:
        return _data(raw, content_type)
    try:
        return check_depth(tree(raw), "data")
    except RecursionError:
        raise DecodeError("data nests too deeply") from None


def from_binary(record: Record, data: Any) -> Event:
    """A binary-mode event: attributes from the ce_* headers, `data` decoded from the value."""
    attributes = ce_attributes(record)
    content_type = record.header("content-type")
    attributes["datacontenttype"] = (
        content_type.decode("utf-8", "replace") if content_type else None
    )
    attributes["data"] = check_depth(plain(data), "data")
    return Event.from_dict(attributes)


def to_envelope(event: Event) -> dict[str, Any]:
    """The event.avsc record for `event`: data as UTF-8 JSON, or as UTF-8 text for other types;
    extensions as text (`true`, `2`: CloudEvents' canonical forms), as the schema's map holds
    them."""
    record: dict[str, Any] = {name: getattr(event, name) for name in ATTRIBUTES}
    data = _data_out(event.data, event.datacontenttype)
    record["data"] = data.encode() if isinstance(data, str) else data
    extensions = {name: text for name in EXTENSIONS if (text := getattr(event, name))}
    extensions.update((name, text_of(value)) for name, value in event.extensions.items())
    if extensions:
        record["extensions"] = extensions
    return record


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The CloudEvents Avro format record for `event` (data as bytes or text, never as a tree)."""
    attribute = {name: getattr(event, name) for name in (*ATTRIBUTES, *EXTENSIONS)}
    attribute.update((name, _attribute(value)) for name, value in event.extensions.items())
    return {
        "attribute": {name: value for name, value in attribute.items() if value is not None},
        "data": _data_out(event.data, event.datacontenttype),
    }


def _attribute(value: Any) -> Any:
    """An extension's value as the CloudEvents Avro format's map holds it: a boolean, an Avro int
    (32 bits) or text."""
    if isinstance(value, bool | str) or (isinstance(value, int) and -(2**31) <= value < 2**31):
        return value
    return text_of(value)


def plain(value: Any) -> Any:
    """A decoded Avro value as JSON-like data (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str | Decimal):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    raise DecodeError(f"Avro value of unexpected type {type(value).__name__}")


def _data(raw: bytes | str | None, content_type: str | None) -> Any:
    if not isinstance(raw, bytes):
        return raw
    if _is_json(content_type):
        return parse_json(raw, "data")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def _data_out(data: Any, content_type: str | None) -> bytes | str | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str) and not _is_json(content_type):
        return data
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event data cannot be written as JSON: {exc}") from None


def _tree(value: Any) -> Any:
    """The JSON value in the CloudEvents format's data union (every nested object is a record)."""
    if isinstance(value, tuple):  # a CloudEventData record chosen in the union, with its name
        return _object(value[1])
    if isinstance(value, Mapping):
        return {str(key): _tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_object(item) for item in value]
    return _number(value)


def _object(record: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): _member(item) for key, item in record["value"].items()}


def _member(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _object(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_object(item) for item in value]
    return _number(value)


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
        return int(value)  # JSON has one number type; the format stores every number as double
    return value


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return not media or media in ("application/json", "text/json") or media.endswith("+json")
