"""Decode Kafka records into CloudEvents (structured and binary modes of the Kafka binding).

As the Kafka protocol binding says, a record whose content-type is a CloudEvents format's
(`application/cloudevents+json`, with or without parameters) is in structured mode, whatever
`ce_*` headers it carries besides; any other record with a `ce_specversion` header is in binary
mode; a JSON value with `specversion` is a structured event without its content-type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson

from dispatcher.errors import DecodeError
from dispatcher.model.event import TEXT_ATTRIBUTES, Event, Record
from dispatcher.model.outcome import VALUE_OMITTED
from dispatcher.pipeline.charsets import charset, codec, media_type
from dispatcher.pipeline.render.paths import format_path

MAX_DEPTH = 64
EXACT_EXPONENT = 400  # past a float's range (1e308, 5e-324) either way
# a run of 19 ASCII digits, found as a run of zeros once every digit reads "0" and every other
# byte " " (a tenth of a regular expression's time on an event)
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
TRACE_CONTEXT = ("traceparent", "tracestate")  # W3C trace context: ASCII, or else ignored
STRUCTURED_TYPES = "application/cloudevents"  # the prefix of the CloudEvents formats' media types

AvroDecoder = Callable[[Record], Event]


def decode(record: Record, avro: AvroDecoder | None = None) -> Event:
    """Decode one record; raise `DecodeError` saying why when it is not a valid event.

    The event's trace context is the first found of: the CloudEvents Distributed Tracing
    extension (binary `ce_traceparent`, structured `traceparent`), a plain `traceparent` header.
    """
    event = _decode(record, avro)
    if event.traceparent is None:
        for key, value in record.headers:  # on the path of every event: no lower(), no copy
            if key == "traceparent" and value:
                tracestate = record.header("tracestate")
                return replace(
                    event,
                    traceparent=value.decode("latin-1"),
                    tracestate=None if tracestate is None else tracestate.decode("latin-1"),
                )
    return event


def _decode(record: Record, avro: AvroDecoder | None) -> Event:
    if record.value is None and (omitted := record.header(VALUE_OMITTED)) is not None:
        raise DecodeError(
            f"the event's value was left out of this record ({omitted.decode(errors='replace')}):"
            f" the original is at {record.text('dispatcher.source.topic')}"
            f"[{record.text('dispatcher.source.partition')}]"
            f"@{record.text('dispatcher.source.offset')}"
        )
    content_type = _content_type(record)
    if avro is not None and _looks_avro(record, content_type):
        return avro(record)
    if binary_mode(record, content_type):
        return _decode_binary(record, content_type)
    try:
        return _decode_structured(record, content_type)
    except DecodeError as exc:
        if record.header("ce_specversion") is None:
            raise
        raise DecodeError(  # the producer meant binary mode, but gave its data a CloudEvents type
            f"{exc} (content-type {content_type} makes the record a structured-mode event,"
            " ce_* headers or not: a binary-mode event's content-type is its data's)"
        ) from None


def _decode_structured(record: Record, content_type: str) -> Event:
    value, document = _structured_document(record, content_type)
    if "data_base64" in document and "data" not in document:
        document = {**document, "data": document["data_base64"]}
    event = Event.from_dict(document)
    if b"\\u" in value or not value.isascii():  # how a lone surrogate gets into a str
        _refuse_lone_surrogates(event)
    return event


def _structured_document(record: Record, content_type: str) -> tuple[bytes, dict[str, Any]]:
    """The value of a structured event and the JSON object it holds; `DecodeError` saying why
    the record is no such event (nor a binary-mode one: which header that lacks, when it has
    some `ce_*` headers)."""
    try:
        if record.value is None:
            raise DecodeError("record has no value and no ce_* headers")
        document = parse_json(record.value)
        if not isinstance(document, dict):
            raise DecodeError(
                f"structured CloudEvent must be a JSON object, got {type(document).__name__}"
            )
        if "specversion" not in document and "cloudevents" not in content_type:
            raise DecodeError("value is neither a structured CloudEvent nor carries ce_* headers")
    except DecodeError:
        _refuse_binary_without_specversion(record, content_type)
        raise
    return record.value, document


def _refuse_binary_without_specversion(record: Record, content_type: str) -> None:
    """`DecodeError` for a record that is not structured (no CloudEvents content-type) but has
    `ce_*` headers: a binary-mode event whose producer left out `ce_specversion`."""
    if media_type(content_type).startswith(STRUCTURED_TYPES):
        return
    names = [key for key, _ in record.headers if key.lower().startswith("ce_")]
    if names:
        raise DecodeError(
            f"binary-mode event lacks the ce_specversion header (it has {', '.join(names)})"
        )


def binary_mode(record: Record, content_type: str) -> bool:
    """Whether `record` (of `content_type`) is a binary-mode event: it has a `ce_specversion`
    header and its content-type is not a CloudEvents format's, which makes it structured."""
    if record.header("ce_specversion") is None:
        return False
    return not media_type(content_type).startswith(STRUCTURED_TYPES)


def _refuse_lone_surrogates(event: Event) -> None:
    """`DecodeError` when a text attribute holds a lone surrogate, which CloudEvents forbids in
    a String. orjson refuses one, but its fallback, the standard library, reads a `\\ud800`
    escape (or the UTF-8 form of a surrogate) into the text, which then fails wherever it is
    encoded: the pair's idempotency key, its result record, a header. `data` may hold one:
    rendering says what it does with it. An extension attribute's text is a String too."""
    texts = [(name, getattr(event, name)) for name in TEXT_ATTRIBUTES]
    texts += [
        (format_path(("extensions", name)), value)  # a name may hold a line break: escaped
        for name, value in event.extensions.items()
        if isinstance(value, str)
    ]
    for name, text in texts:
        if text is None or text.isascii():
            continue
        try:
            text.encode()
        except UnicodeEncodeError:
            raise DecodeError(
                f"text that is not valid Unicode (a lone surrogate) in {name}"
            ) from None


def _decode_binary(record: Record, content_type: str) -> Event:
    attributes = ce_attributes(record)
    attributes["datacontenttype"] = content_type or None
    attributes["data"] = _decode_data(record.value, content_type)
    return Event.from_dict(attributes)


def _decode_data(value: bytes | None, content_type: str) -> Any:
    """A binary-mode event's data: JSON for a JSON type (or none); text in its `charset`, else
    UTF-8, for a text type; for another type (`application/octet-stream`, `image/png`) UTF-8
    text when it is that, else base64 text, as the Avro envelope's bytes and a structured
    event's `data_base64` reach hooks."""
    if value is None:
        return None
    if not content_type or "json" in content_type:
        return parse_json(value)
    declared = charset(content_type)
    if declared:
        return _text_in(value, declared, content_type)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        if _is_text(media_type(content_type)):
            raise DecodeError(
                f"data of type {content_type} is not UTF-8 text (name its encoding in the"
                " content-type's charset parameter)"
            ) from None
        return base64.b64encode(value).decode("ascii")


def _text_in(value: bytes, declared: str, content_type: str) -> str:
    """`value` decoded in the `charset` its content-type declares; `DecodeError` saying why not."""
    encoding = codec(declared)
    if encoding is None:
        raise DecodeError(f"data of type {content_type}: charset {declared!r} is not known")
    try:
        return value.decode(encoding)
    except LookupError:  # a codec that is no text encoding (base64, rot13)
        raise DecodeError(
            f"data of type {content_type}: charset {declared!r} is not a text encoding"
        ) from None
    except UnicodeDecodeError:
        raise DecodeError(f"data of type {content_type} is not {declared} text") from None


def _is_text(media: str) -> bool:
    return media.startswith("text/") or media == "application/xml" or media.endswith("+xml")


def read_json(value: bytes) -> Any:
    """`json.loads(value)`: what the standard library reads, exactly, most of it read by orjson
    (a kilobyte of JSON in a fifth of the time). orjson reads integers past 64 bits as floats
    (losing digits) and refuses NaN, lone surrogates and encodings other than UTF-8: documents
    with a number of 19 digits or more, or that orjson refuses, are read by the standard
    library. Raises what `json.loads` raises (`ValueError`, `RecursionError`)."""
    if _LONG_NUMBER in value.translate(_DIGITS_AS_ZEROS):
        return json.loads(value)
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def read_json_exact(value: bytes) -> Any:
    """`json.loads(value)`, but every number with a fraction or an exponent is the `Decimal` it
    is written as (`1000000000000000.01`, `1.10`), not the nearest float; integers are exact
    either way. A number beyond a float's magnitude (exponent past +-`EXACT_EXPONENT`) is read
    as `json.loads` reads it (inf, 0.0): its plain text would be as long as its exponent is
    large. For checks that compare an answer's numbers exactly; slower than `read_json`."""
    return json.loads(value, parse_float=_exact_number)


def _exact_number(text: str) -> Decimal | float:
    number = Decimal(text)
    return number if -EXACT_EXPONENT < number.adjusted() < EXACT_EXPONENT else float(text)


def parse_json(value: bytes, what: str = "value") -> Any:
    """`value` read as JSON (`read_json`) and nested no deeper than `MAX_DEPTH`; `DecodeError`
    saying why not, naming it `what`. Events' JSON, and JSON data in an Avro envelope."""
    try:
        document = read_json(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"{what} nests too deeply") from None
    if value.count(b"{") + value.count(b"[") <= MAX_DEPTH:
        return document  # too few brackets, in strings or not, to open a container at MAX_DEPTH
    return check_depth(document, what)


def check_depth(document: Any, what: str = "value") -> Any:
    """`document`, once it is known to nest no deeper than `MAX_DEPTH` (else `DecodeError`).

    The root is at depth 0 and each value one deeper than its container; only containers are
    visited (a container at `MAX_DEPTH` with anything in it holds a value too deep).
    """
    stack = [(document, 0)] if isinstance(document, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH or (depth == MAX_DEPTH and node):
            raise DecodeError(f"{what} nests deeper than {MAX_DEPTH} levels")
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return document


def ce_attributes(record: Record) -> dict[str, Any]:
    """The attributes of a binary-mode event, from its `ce_*` headers (any case); `DecodeError`
    naming a header that is not UTF-8 text. A trace context header that is not is left out, as a
    structured one that is not ASCII is: a producer's malformed `traceparent` starts a new trace,
    it never fails the event."""
    attributes: dict[str, Any] = {}
    for key, value in record.headers:
        if value is not None and key.lower().startswith("ce_"):  # a null value: no attribute
            name = key[3:].lower()
            try:
                attributes[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                if name not in TRACE_CONTEXT:
                    raise DecodeError(f"header {key} is not UTF-8 text") from None
    return attributes


def _content_type(record: Record) -> str:
    """The record's content-type header ("" without one); `DecodeError` when it is not text."""
    value = record.header("content-type")
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("header content-type is not UTF-8 text") from None


def _looks_avro(record: Record, content_type: str) -> bool:
    """Whether the record is Avro: its content-type says so, or, having none (a Schema Registry
    serializer sets none), its value starts as the registry's wire format does. A value of
    another declared type (binary data in binary mode) may start with a zero byte too."""
    if "avro" in content_type:
        return True
    value = record.value
    return not content_type and value is not None and len(value) > 5 and value[:1] == b"\x00"
