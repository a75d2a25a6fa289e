"""Decode Kafka records into CloudEvents (structured and binary modes of the Kafka binding)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dispatcher.errors import DecodeError

Headers = tuple[tuple[str, bytes], ...]
REQUIRED_ATTRIBUTES = ("id", "type", "source", "specversion")
MAX_DEPTH = 64


class MessageLike(Protocol):
    """What the dispatcher reads of a `confluent_kafka.Message` (which tests cannot construct)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as it came from Kafka, kept unchanged for dead letters."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None

    @classmethod
    def from_message(cls, message: MessageLike) -> Record:
        raw = message.headers() or ()
        ts_type, ts = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            headers=tuple((name, value or b"") for name, value in raw),
            timestamp_ms=ts if ts_type else None,
        )

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found

    def text(self, name: str) -> str:
        """Header `name` as text ("" when absent); bytes that are not UTF-8 are replaced."""
        value = self.header(name)
        return value.decode("utf-8", "replace") if value is not None else ""


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvent: the attributes hooks match and map, and its data."""

    id: str
    type: str
    source: str
    specversion: str = "1.0"
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    data: Any = None

    @classmethod
    def from_dict(cls, attributes: dict[str, Any]) -> Event:
        missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
        if missing:
            raise DecodeError(f"CloudEvent lacks required attribute(s): {', '.join(missing)}")
        for name in ("id", "type", "source", "specversion", "time", "subject", "datacontenttype"):
            value = attributes.get(name)
            if value is not None and not isinstance(value, str):
                raise DecodeError(f"CloudEvent attribute {name!r} must be a string")
        return cls(
            id=attributes["id"],
            type=attributes["type"],
            source=attributes["source"],
            specversion=attributes["specversion"],
            time=attributes.get("time"),
            subject=attributes.get("subject"),
            datacontenttype=attributes.get("datacontenttype"),
            data=attributes.get("data"),
        )

    def attributes(self) -> dict[str, Any]:
        """The event as the mapping that `from` paths and templates address."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "specversion": self.specversion,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "data": self.data,
        }


AvroDecoder = Callable[[Record], Event]


def decode(record: Record, avro: AvroDecoder | None = None) -> Event:
    """Decode one record; raise `DecodeError` saying why when it is not a valid event."""
    content_type = _text(record.header("content-type")) or ""
    if avro is not None and _looks_avro(record, content_type):
        return avro(record)
    if record.header("ce_specversion") is not None:
        return _decode_binary(record, content_type)
    if record.value is None:
        raise DecodeError("record has no value and no ce_* headers")
    document = _parse_json(record.value)
    if not isinstance(document, dict):
        raise DecodeError(
            f"structured CloudEvent must be a JSON object, got {type(document).__name__}"
        )
    if "specversion" not in document and "cloudevents" not in content_type:
        raise DecodeError("value is neither a structured CloudEvent nor carries ce_* headers")
    if "data_base64" in document and "data" not in document:
        document = {**document, "data": document["data_base64"]}
    return Event.from_dict(document)


def _decode_binary(record: Record, content_type: str) -> Event:
    attributes: dict[str, Any] = {}
    for key, value in record.headers:
        if key.lower().startswith("ce_"):
            attributes[key[3:].lower()] = _text(value)
    attributes["datacontenttype"] = content_type or None
    attributes["data"] = _decode_data(record.value, content_type)
    return Event.from_dict(attributes)


def _decode_data(value: bytes | None, content_type: str) -> Any:
    if value is None:
        return None
    if not content_type or "json" in content_type:
        return _parse_json(value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"data of type {content_type} is not UTF-8 text") from None


def _parse_json(value: bytes) -> Any:
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"value is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("value nests too deeply") from None
    _check_depth(document)
    return document


def _check_depth(document: Any) -> None:
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a header is not UTF-8 text") from None


def _looks_avro(record: Record, content_type: str) -> bool:
    if "avro" in content_type:
        return True
    value = record.value
    return value is not None and len(value) > 5 and value[:1] == b"\x00"
