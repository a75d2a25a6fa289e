"""Decoding Kafka records into CloudEvents: structured and binary modes, and every way to fail."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from dispatcher.errors import DecodeError
from dispatcher.kafka.avro.envelope import from_binary
from dispatcher.model.event import TEXT_ATTRIBUTES, Event, Record
from dispatcher.pipeline.decode import MAX_DEPTH, decode

STRUCTURED = "application/cloudevents+json"
ATTRIBUTES = {"specversion": "1.0", "id": "ev-1", "type": "order.shipped", "source": "/orders"}


@dataclass
class Message:
    """A stand-in for `confluent_kafka.Message`, which cannot be constructed in Python."""

    _value: bytes | None
    _headers: Sequence[tuple[str, bytes | None]] | None = None
    _key: bytes | None = b"k"
    _topic: str | None = "dugaa.events"
    _partition: int | None = 2
    _offset: int | None = 17
    _timestamp: tuple[int, int] = (1, 1_700_000_000_000)

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Sequence[tuple[str, bytes | None]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


def record(value: bytes | None, *headers: tuple[str, bytes | None]) -> Record:
    return Record.from_message(Message(value, list(headers)))


def structured(document: Any, *headers: tuple[str, bytes]) -> Record:
    return record(json.dumps(document).encode(), *headers)


def binary(value: bytes | None, content_type: str | None = "application/json", **ce: str) -> Record:
    attributes = {"id": "ev-1", "type": "order.shipped", "source": "/orders", "specversion": "1.0"}
    attributes.update(ce)
    headers = [(f"ce_{k}", v.encode()) for k, v in attributes.items()]
    if content_type is not None:
        headers.append(("content-type", content_type.encode()))
    return record(value, *headers)


def test_a_record_keeps_what_kafka_gave() -> None:
    # a null header value stays null (a dead letter carries the record unchanged)
    message = Message(b"v", [("a", b"1"), ("b", None)], _key=None)

    rec = Record.from_message(message)

    assert rec == Record(
        "dugaa.events", 2, 17, None, b"v", (("a", b"1"), ("b", None)), 1_700_000_000_000
    )


def test_a_record_without_headers_or_timestamp() -> None:
    rec = Record.from_message(Message(None, None, _timestamp=(0, -1)))

    assert rec.headers == ()
    assert rec.timestamp_ms is None


def test_header_lookup_is_case_insensitive_and_takes_the_last() -> None:
    rec = record(b"", ("Content-Type", b"a"), ("content-type", b"b"))

    assert rec.header("CONTENT-TYPE") == b"b"
    assert rec.header("absent") is None


def test_a_structured_event_with_its_content_type() -> None:
    document = {
        **ATTRIBUTES,
        "time": "2026-11-02T09:30:00Z",
        "subject": "order-7",
        "datacontenttype": "application/json",
        "data": {"order_id": 7, "items": [1, 2]},
    }

    event = decode(structured(document, ("content-type", STRUCTURED.encode())))

    assert event == Event(
        id="ev-1",
        type="order.shipped",
        source="/orders",
        specversion="1.0",
        time="2026-11-02T09:30:00Z",
        subject="order-7",
        datacontenttype="application/json",
        data={"order_id": 7, "items": [1, 2]},
    )


def test_a_structured_event_without_a_content_type_is_known_by_its_specversion() -> None:
    event = decode(structured({**ATTRIBUTES, "data": {"x": 1}}))

    assert event.type == "order.shipped"
    assert event.data == {"x": 1}
    assert event.time is None


def test_a_structured_event_may_have_no_data() -> None:
    assert decode(structured(ATTRIBUTES)).data is None


def test_data_base64_is_kept_as_its_text_when_there_is_no_data() -> None:
    event = decode(structured({**ATTRIBUTES, "data_base64": "aGVsbG8="}))

    assert event.data == "aGVsbG8="


def test_data_wins_over_data_base64() -> None:
    event = decode(structured({**ATTRIBUTES, "data": {"a": 1}, "data_base64": "aGVsbG8="}))

    assert event.data == {"a": 1}


@pytest.mark.parametrize(
    "content_type", [STRUCTURED, "Application/CloudEvents+JSON; charset=UTF-8"]
)
def test_a_cloudevents_content_type_is_structured_mode_whatever_ce_headers_come_with_it(
    content_type: str,
) -> None:
    """The Kafka binding tells the modes apart by content-type: a structured event that also
    carries `ce_*` headers (for routing, say) keeps its data, not the whole envelope as data."""
    document = {**ATTRIBUTES, "subject": "order-7", "data": {"order_id": 7}}
    ce_headers = [(f"ce_{name}", text.encode()) for name, text in ATTRIBUTES.items()]

    event = decode(structured(document, *ce_headers, ("content-type", content_type.encode())))

    assert (event.subject, event.data) == ("order-7", {"order_id": 7})


def test_ce_headers_with_a_cloudevents_content_type_are_told_that_it_makes_structured_mode() -> (
    None
):
    rec = binary(b'{"order_id": 7}', content_type="application/cloudevents+json")

    with pytest.raises(
        DecodeError,
        match=r"^CloudEvent lacks required attribute\(s\): id, type, source, specversion "
        r"\(content-type application/cloudevents\+json makes the record a structured-mode event,"
        r" ce_\* headers or not: a binary-mode event's content-type is its data's\)$",
    ):
        decode(rec)


def test_a_binary_event_reads_attributes_from_ce_headers_and_data_from_the_value() -> None:
    rec = binary(b'{"order_id": 7}', time="2026-11-02T09:30:00Z", subject="order-7")

    event = decode(rec)

    assert event == Event(
        id="ev-1",
        type="order.shipped",
        source="/orders",
        time="2026-11-02T09:30:00Z",
        subject="order-7",
        datacontenttype="application/json",
        data={"order_id": 7},
    )


def test_a_binary_event_without_a_content_type_reads_json_data() -> None:
    event = decode(binary(b"[1, 2]", content_type=None))

    assert event.data == [1, 2]
    assert event.datacontenttype is None


def test_a_binary_event_with_text_data_keeps_the_text() -> None:
    event = decode(binary("héllo, world".encode(), content_type="text/plain"))

    assert event.data == "héllo, world"
    assert event.datacontenttype == "text/plain"


@pytest.mark.parametrize(
    ("content_type", "value"),
    [
        ("text/plain; charset=iso-8859-1", "Café".encode("latin-1")),
        ('text/csv; charset="windows-1252"', "Ca;fé;€".encode("cp1252")),
        ("application/xml; Charset=UTF-16", "<a>Café</a>".encode("utf-16")),
        ("text/plain; format=flowed; charset=Shift_JIS", "受付".encode("shift_jis")),
    ],
)
def test_binary_text_data_is_read_in_the_charset_its_content_type_names(
    content_type: str, value: bytes
) -> None:
    encoding = content_type.rsplit("=", 1)[1].strip('"')

    event = decode(binary(value, content_type=content_type))

    assert event.data == value.decode(encoding)
    assert event.datacontenttype == content_type


@pytest.mark.parametrize(
    ("charset", "message"),
    [
        ("x-made-up", "charset 'x-made-up' is not known"),
        ("base64", "charset 'base64' is not a text encoding"),
        ("us-ascii", "is not us-ascii text"),
    ],
)
def test_binary_text_data_that_its_charset_cannot_read_says_why(charset: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(binary("Café".encode("latin-1"), content_type=f"text/plain; charset={charset}"))


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "image/png", "application/pdf; name=a.pdf"]
)
def test_binary_data_that_is_not_text_reaches_hooks_as_base64(content_type: str) -> None:
    """As the same bytes do in an Avro envelope, and as `data_base64` does in structured mode."""
    value = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"

    event = decode(binary(value, content_type=content_type))

    assert event.data == base64.b64encode(value).decode("ascii")


def test_binary_data_that_starts_with_a_zero_byte_is_no_avro_when_its_type_says_otherwise() -> None:
    """Only a record without a content-type is taken for the Schema Registry's wire format by
    its first byte."""
    value = b"\x00\x00\x00\x00\x07 raw bytes \xff"

    event = decode(binary(value, content_type="application/octet-stream"), avro=_no_avro)

    assert event.data == base64.b64encode(value).decode("ascii")


def _no_avro(rec: Record) -> Event:
    raise AssertionError("read as Avro")


def test_a_binary_event_without_a_value_has_no_data() -> None:
    assert decode(binary(None)).data is None


def test_a_binary_event_header_with_a_null_value_is_no_attribute() -> None:
    base = [("ce_id", b"ev-1"), ("ce_type", b"t"), ("ce_source", b"s"), ("ce_specversion", b"1.0")]

    assert decode(record(b"{}", *base, ("ce_subject", None))).subject is None
    with pytest.raises(DecodeError, match=r"required attribute.*id"):
        decode(record(b"{}", ("ce_id", None), *base[1:]))


def test_a_binary_event_header_names_are_case_insensitive() -> None:
    rec = record(
        b"{}",
        ("CE_ID", b"ev-1"),
        ("ce_Type", b"t"),
        ("ce_source", b"s"),
        ("ce_specversion", b"1.0"),
    )

    assert decode(rec).type == "t"


@pytest.mark.parametrize(
    "value",
    [b"{not json", b'{"a": 1', b"\xff\xfe\x00", b""],
    ids=["garbage", "truncated", "not-utf8", "empty"],
)
def test_a_value_that_is_not_json_is_a_decode_error(value: bytes) -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode(record(value))


@pytest.mark.parametrize("document", [[ATTRIBUTES], "order.shipped", 42, None, True])
def test_a_structured_value_that_is_not_an_object_is_a_decode_error(document: Any) -> None:
    with pytest.raises(DecodeError, match="must be a JSON object"):
        decode(structured(document))


def test_an_object_without_specversion_or_cloudevents_content_type_is_a_decode_error() -> None:
    document = {k: v for k, v in ATTRIBUTES.items() if k != "specversion"}

    with pytest.raises(DecodeError, match="neither a structured CloudEvent"):
        decode(structured(document))


@pytest.mark.parametrize("missing", ["id", "type", "source", "specversion"])
def test_a_structured_event_missing_a_required_attribute_is_a_decode_error(missing: str) -> None:
    document = {k: v for k, v in ATTRIBUTES.items() if k != missing}

    with pytest.raises(DecodeError, match=rf"required attribute.*{missing}"):
        decode(structured(document, ("content-type", STRUCTURED.encode())))


def test_an_empty_required_attribute_counts_as_missing() -> None:
    with pytest.raises(DecodeError, match=r"required attribute.*id"):
        decode(structured({**ATTRIBUTES, "id": ""}))


@pytest.mark.parametrize("missing", ["id", "type", "source"])
def test_a_binary_event_missing_a_required_header_is_a_decode_error(missing: str) -> None:
    rec = binary(b"{}")
    rec = Record(rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                 tuple(h for h in rec.headers if h[0] != f"ce_{missing}"))  # fmt: skip

    with pytest.raises(DecodeError, match=missing):
        decode(rec)


@pytest.mark.parametrize(
    ("value", "content_type"),
    [(b'{"order_id": 7}', "application/json"), (b"hello", "text/plain"), (None, None)],
)
def test_a_binary_event_without_ce_specversion_says_that_it_lacks_that_header(
    value: bytes | None, content_type: str | None
) -> None:
    """Not that the record has no ce_* headers, nor that its data is not JSON."""
    rec = binary(value, content_type=content_type)
    rec = record(rec.value, *(h for h in rec.headers if h[0] != "ce_specversion"))

    with pytest.raises(
        DecodeError,
        match=r"^binary-mode event lacks the ce_specversion header \(it has ce_id, ce_type, ce_source\)$",
    ):
        decode(rec)


def test_a_structured_event_with_stray_ce_headers_still_says_what_it_lacks() -> None:
    document = {k: v for k, v in ATTRIBUTES.items() if k != "id"}

    with pytest.raises(DecodeError, match=r"required attribute\(s\): id$"):
        decode(structured(document, ("ce_id", b"ev-1")))


def test_a_content_type_that_is_not_utf8_is_named_in_the_error() -> None:
    with pytest.raises(DecodeError, match=r"^header content-type is not UTF-8 text$"):
        decode(record(b"{}", ("ce_specversion", b"1.0"), ("content-type", b"text/plain; x=\xff")))


@pytest.mark.parametrize("name", TEXT_ATTRIBUTES)
def test_an_attribute_that_is_not_a_string_is_a_decode_error(name: str) -> None:
    with pytest.raises(DecodeError, match=f"'{name}' must be a string"):
        decode(structured({**ATTRIBUTES, name: 7}))


def test_a_binary_event_with_invalid_json_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode(binary(b"{oops"))


def test_a_binary_event_with_non_utf8_text_data_is_a_decode_error() -> None:
    with pytest.raises(
        DecodeError, match=r"not UTF-8 text \(name its encoding in the content-type.s charset"
    ):
        decode(binary(b"\xff\xfe", content_type="text/plain"))


def test_a_header_that_is_not_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not UTF-8"):
        decode(record(b"{}", ("ce_specversion", b"1.0"), ("ce_id", b"\xff")))


def test_a_record_without_value_or_ce_headers_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="no value"):
        decode(record(None))


def nested(lists: int) -> dict[str, Any]:
    data: Any = "leaf"
    for i in range(lists):
        data = [data] if i % 2 else {"k": data}
    return {**ATTRIBUTES, "data": data}


def test_data_nested_within_the_limit_is_accepted() -> None:
    document = nested(MAX_DEPTH - 2)

    assert decode(structured(document)).data == document["data"]


def test_data_nested_past_the_limit_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="nests deeper"):
        decode(structured(nested(MAX_DEPTH + 1)))


def test_extremely_deep_nesting_is_a_decode_error_not_a_crash() -> None:
    value = b'{"specversion": "1.0", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"

    with pytest.raises(DecodeError, match="nests"):
        decode(record(value))


def test_deep_nesting_in_binary_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="nests"):
        decode(binary(b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5)))


def test_an_avro_decoder_is_used_for_avro_records_only() -> None:
    seen: list[Record] = []

    def avro(rec: Record) -> Event:
        seen.append(rec)
        return Event(id="a", type="t", source="s")

    avro_rec = record(b"\x00\x00\x00\x00\x01payload")
    assert decode(avro_rec, avro).id == "a"
    assert decode(structured(ATTRIBUTES), avro).id == "ev-1"
    assert seen == [avro_rec]


def test_the_tenant_extension_is_read_in_both_modes() -> None:
    structured = json.dumps({**ATTRIBUTES, "tenant": "acme", "data": {}}).encode()
    assert decode(Record("t", 0, 0, None, structured, ())).tenant == "acme"
    headers = tuple((f"ce_{k}", v.encode()) for k, v in {**ATTRIBUTES, "tenant": "acme"}.items())
    assert decode(Record("t", 0, 0, None, b"{}", headers)).tenant == "acme"
    assert decode(Record("t", 0, 0, None, json.dumps(ATTRIBUTES).encode(), ())).tenant is None


def test_a_tenant_that_is_not_text_is_a_decode_error() -> None:
    structured = json.dumps({**ATTRIBUTES, "tenant": 7}).encode()
    with pytest.raises(DecodeError, match="'tenant' must be a string"):
        decode(Record("t", 0, 0, None, structured, ()))


def test_the_tenant_is_an_attribute_paths_and_templates_can_name() -> None:
    event = Event(id="1", type="t", source="s", tenant="acme")
    assert event.attributes()["tenant"] == "acme"


PRODUCER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTHER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PLAIN = "00-11111111111111111111111111111111-2222222222222222-01"


def test_the_binary_trace_extension_comes_before_a_plain_traceparent_header() -> None:
    ce = binary(b"{}", traceparent=PRODUCER, tracestate="a=1")
    rec = record(ce.value, *ce.headers, ("traceparent", PLAIN.encode()), ("tracestate", b"p=2"))
    event = decode(rec)
    assert (event.traceparent, event.tracestate) == (PRODUCER, "a=1")


def test_the_structured_trace_extension_comes_before_a_plain_traceparent_header() -> None:
    document = {**ATTRIBUTES, "traceparent": OTHER, "data": {}}
    event = decode(structured(document, ("traceparent", PLAIN.encode())))
    assert (event.traceparent, event.tracestate) == (OTHER, None)


def test_a_plain_traceparent_header_with_its_tracestate_when_the_event_has_none() -> None:
    rec = structured(
        {**ATTRIBUTES, "data": {}}, ("traceparent", PLAIN.encode()), ("tracestate", b"p=2")
    )
    event = decode(rec)
    assert (event.traceparent, event.tracestate) == (PLAIN, "p=2")
    assert decode(binary(b"{}", Traceparent=PLAIN)).traceparent == PLAIN  # ce_ names: any case


def test_an_event_without_trace_context_has_none() -> None:
    event = decode(structured({**ATTRIBUTES, "data": {}}))
    assert (event.traceparent, event.tracestate) == (None, None)


@pytest.mark.parametrize("value", [7, None, "", ["00-x"], {"v": 1}])
def test_a_structured_traceparent_that_is_not_text_is_ignored_not_an_error(value: Any) -> None:
    event = decode(structured({**ATTRIBUTES, "traceparent": value, "tracestate": value}))
    assert (event.id, event.traceparent, event.tracestate) == ("ev-1", None, None)


def test_a_malformed_traceparent_is_kept_as_sent_for_the_tracer_to_refuse() -> None:
    assert decode(binary(b"{}", traceparent="garbage")).traceparent == "garbage"


@pytest.mark.parametrize("name", ["ce_traceparent", "ce_tracestate", "CE_TRACEPARENT"])
def test_a_binary_trace_context_that_is_not_utf8_is_ignored_not_an_error(name: str) -> None:
    ce = binary(b"{}")
    event = decode(record(ce.value, *ce.headers, (name, b"00-\xff\xfe")))
    assert (event.id, event.traceparent, event.tracestate) == ("ev-1", None, None)


def test_an_avro_binary_trace_context_that_is_not_utf8_is_ignored_not_an_error() -> None:
    ce = binary(b"{}", content_type="application/avro")
    event = from_binary(record(ce.value, *ce.headers, ("ce_traceparent", b"\xff")), {"n": 1})
    assert (event.id, event.traceparent, event.data) == ("ev-1", None, {"n": 1})


def test_a_binary_header_that_is_not_utf8_is_named_in_the_error() -> None:
    with pytest.raises(DecodeError, match="header ce_id is not UTF-8 text"):
        decode(record(b"{}", ("ce_specversion", b"1.0"), ("ce_id", b"\xff")))


def test_the_trace_context_is_not_an_attribute_templates_see() -> None:
    event = decode(binary(b"{}", traceparent=PRODUCER))
    assert "traceparent" not in event.attributes()


def test_a_container_at_the_depth_limit_may_be_empty_but_not_hold_anything() -> None:
    empty = b'{"specversion":"1.0","id":"e","type":"t","source":"s","data":' + (
        b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    )
    holding = empty.replace(b"[]", b"[1]")

    assert decode(record(empty)).id == "e"
    with pytest.raises(DecodeError, match="nests deeper"):
        decode(record(holding))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    document = {**ATTRIBUTES, "data": {"text": "[{" * 500}}

    assert decode(structured(document)).data == {"text": "[{" * 500}


@pytest.mark.parametrize("number", [10**18, 10**19 - 1, 2**64 + 1, -(2**70)])
def test_integers_of_nineteen_digits_or_more_are_read_exactly(number: int) -> None:
    document = {**ATTRIBUTES, "data": {"n": number, "note": "x"}}

    assert decode(structured(document)).data == {"n": number, "note": "x"}


@pytest.mark.parametrize("name", ["id", "type", "source", "subject", "tenant", "time"])
@pytest.mark.parametrize(
    "surrogate", [b"\\ud800", b"\\uDC01", b"\xed\xa0\x80"], ids=["escape", "low", "utf8-bytes"]
)
def test_a_text_attribute_with_a_lone_surrogate_does_not_decode(
    name: str, surrogate: bytes
) -> None:
    """orjson refuses it; the standard library, its fallback, reads it into a str that no
    UTF-8 encoding (idempotency key, result record, header) can take: refused here instead."""
    attributes = {**ATTRIBUTES, name: "x"}
    value = json.dumps(attributes).encode().replace(b'"x"', b'"a' + surrogate + b'"')

    with pytest.raises(DecodeError, match=rf"not valid Unicode \(a lone surrogate\) in {name}$"):
        decode(record(value))


def test_a_lone_surrogate_in_data_still_decodes_rendering_says_what_becomes_of_it() -> None:
    value = json.dumps({**ATTRIBUTES, "data": {"note": "x"}}).encode().replace(b'"x"', b'"\\ud800"')

    assert decode(record(value)).data == {"note": "\ud800"}


def test_a_pair_of_surrogates_escaped_is_one_character_and_decodes() -> None:
    value = json.dumps({**ATTRIBUTES, "id": "x"}).encode().replace(b'"x"', b'"\\ud83d\\ude00"')

    assert decode(record(value)).id == "\U0001f600"


def test_a_structured_trace_context_that_is_not_ascii_is_ignored_not_carried() -> None:
    document = {**ATTRIBUTES, "traceparent": "x", "tracestate": "y"}
    value = (
        json.dumps(document).encode().replace(b'"x"', b'"\\ud800"').replace(b'"y"', b'"\\u00e9"')
    )

    event = decode(record(value))

    assert (event.traceparent, event.tracestate) == (None, None)
