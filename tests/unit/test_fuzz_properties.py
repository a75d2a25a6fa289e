"""Hostile input, fuzzed and by example: decoding, mapping, rendering and reading responses.

The properties: whatever bytes and headers a record holds, `decode` returns an event or raises
`DecodeError`; whatever data an event holds, every valid hook (any format, any fields) renders a
body that is well-formed in its format or raises `RenderError` / `PayloadTooLarge`. Every
failure is a `DispatcherError`, so it becomes a dead letter with its kind, never a dead worker.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from dispatcher.errors import (
    ConfigError,
    DecodeError,
    DispatcherError,
    PayloadTooLarge,
    RenderError,
)
from dispatcher.hooks.loader import hook_from_definition, load_hooks_text
from dispatcher.http.inflate import Inflater
from dispatcher.kafka.avro.decoder import encode_event, event_decoder
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.expect import check_body
from dispatcher.pipeline.judge import judge, retry_after
from dispatcher.pipeline.render import render_body
from dispatcher.pipeline.request import build_request

PROPERTY = settings(
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
DECODER = event_decoder({})  # the worker's decoder without a schema registry: JSON and Avro

# -- strategies ------------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    ["", "\r\n", "\x00", "\ud800", "\udfff", "{data.secret}", "{{", "}}", "{", "<![CDATA[",
     "&amp;", "]]>", '"', ",", ";", "=", "&", "%", "%Y", "1e400", "NaN", " 19.99 ", "true",
     "2026-11-29T10:00:00Z", "\u202e", "\ufeff", "x" * 300]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=20), NASTY_TEXT)
KEYS = st.one_of(
    st.sampled_from(["a", "b", "items", "sku", "total", "odd key", "@x", "#text"]), TEXT
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
PATHS = st.sampled_from(
    ["data", "data.a", "data.a.b", "data.items[0]", "data.items[-1].sku", 'data["odd key"]',
     "data.total", "data.missing", "id", "type", "source", "time", "subject"]
)  # fmt: skip
TEMPLATE = st.lists(
    st.one_of(
        st.text(st.characters(exclude_characters="{}"), max_size=8),
        PATHS.map(lambda p: "{" + p + "}"),
        st.sampled_from(["{{", "}}"]),
    ),
    max_size=5,
).map("".join)
FIELD_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6})?", fullmatch=True)
TYPES_AND_FORMATS = st.sampled_from(
    [(None, None), ("string", None), ("integer", None), ("decimal", None), ("decimal", "0.00"),
     ("decimal", "0"), ("boolean", None), ("datetime", None), ("datetime", "epoch"),
     ("datetime", "epoch_ms"), ("datetime", "%Y-%m-%d %H:%M"), ("datetime", "%")]
)  # fmt: skip


@st.composite
def field_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(FIELD_NAME)}
    source = draw(st.sampled_from(["from", "template", "value"]))
    spec[source] = draw(
        {"from": PATHS, "template": TEMPLATE, "value": st.one_of(SCALARS, TEXT)}[source]
    )
    kind, fmt = draw(TYPES_AND_FORMATS)
    if kind is not None:
        spec["type"] = kind
    if fmt is not None:
        spec["format"] = fmt
    if draw(st.booleans()):
        spec["required"] = True
    if draw(st.integers(0, 3)) == 0:
        spec["default"] = draw(st.one_of(st.integers(-5, 5), st.sampled_from(["0", "x", "1.50"])))
    return spec


@st.composite
def hooks(draw: st.DrawFn, *, fields: bool | None = None) -> Hook:
    """A hook a hooks file could define: any format, with or without fields."""
    fmt = draw(st.sampled_from(["json", "csv", "xml", "form"]))
    raw: dict[str, Any] = {
        "id": "fuzz",
        "events": ["t"],
        "url": "https://fuzz.example.com/in",
        "format": fmt,
        "max_payload_bytes": draw(st.sampled_from([64, 4096, 1 << 20])),
    }
    if draw(st.booleans()) if fields is None else fields:
        raw["fields"] = draw(st.lists(field_specs(), min_size=1, max_size=5))
    if fmt == "csv":
        raw["csv"] = {"delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
                      "header": draw(st.booleans())}  # fmt: skip
    if fmt == "xml":
        raw["xml"] = {"root": draw(st.sampled_from(["message", "ns-root", "r"]))}
    try:
        return hook_from_definition(raw, "fuzz")
    except ConfigError:
        assume(False)  # not a hook anyone could load: nothing to render
        raise


def events_with(data: Any) -> Event:
    return Event(
        id="ev-1", type="t", source="/fuzz", time="2026-11-29T10:00:00Z", subject="s", data=data
    )


HEADER_NAMES = st.one_of(
    st.sampled_from(["content-type", "ce_specversion", "ce_id", "ce_type", "ce_source",
                     "ce_time", "CE_ID", "ce_datacontenttype", "traceparent"]),
    st.text(max_size=10),
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.sampled_from([b"1.0", b"x", b"application/json", b"application/cloudevents+json",
                     b"application/avro", b"application/cloudevents+avro", b"text/plain",
                     b"\xff\xfe", b""]),
    st.binary(max_size=16),
)  # fmt: skip
NOISE_HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3)
BINARY_HEADERS = (
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e"),
    ("ce_type", b"t"),
    ("ce_source", b"s"),
)
Headers = tuple[tuple[str, bytes], ...]
ATTRIBUTES = (("specversion", "1.0"), ("id", "e"), ("type", "t"), ("source", "s"))


@st.composite
def records(draw: st.DrawFn) -> Record:
    """What a topic might carry: noise, JSON of any shape, events in both modes, Avro (whole or
    broken), each with the headers that go with it or not, and stray headers besides."""
    kind = draw(st.sampled_from(["bytes", "json", "structured", "binary", "avro", "framed"]))
    headers: Headers = ()
    if kind == "bytes":
        value = draw(st.one_of(st.none(), st.binary(max_size=64)))
    elif kind == "json":
        value = json.dumps(draw(JSON_DATA)).encode()
    elif kind == "binary":
        value = json.dumps(draw(JSON_DATA)).encode()
        headers = BINARY_HEADERS
    elif kind == "structured":
        # mostly valid attributes, now and then one missing or of another type
        attributes = {
            name: default if draw(st.integers(0, 4)) else draw(SCALARS)
            for name, default in ATTRIBUTES
            if draw(st.integers(0, 9))
        }
        value = json.dumps({**attributes, "data": draw(JSON_DATA)}).encode()
        headers = (("content-type", b"application/cloudevents+json"),)
    else:
        text = st.text(st.characters(categories=["L", "N"]), max_size=10)
        value = encode_event(events_with(draw(st.one_of(st.none(), text))))
        if draw(st.booleans()):  # broken: cut short, with noise after
            value = value[: draw(st.integers(0, len(value)))] + draw(st.binary(max_size=8))
        if kind == "framed":  # the registry's wire format: magic byte, schema id
            value = b"\x00" + draw(st.binary(min_size=4, max_size=4)) + value
        headers = (("content-type", b"application/avro"),)
    if not draw(st.integers(0, 3)):
        headers = ()
    noise = tuple(draw(NOISE_HEADERS))
    return Record("events", 0, 7, draw(st.one_of(st.none(), st.binary(max_size=8))), value,
                  headers + noise)  # fmt: skip


# -- decoding ------------------------------------------------------------------------------


@PROPERTY
@given(record=records())
@example(record=Record("events", 0, 0, None, b"\xff\xfe", ()))
@example(record=Record("events", 0, 0, None, b"[1,2]", BINARY_HEADERS))
@example(record=Record("events", 0, 0, None, b"1" * 5000, BINARY_HEADERS))
@example(record=Record("events", 0, 0, None, b"\x00\x00\x00\x00\x01" + b"\xff" * 9, ()))
def test_any_record_decodes_to_an_event_or_a_decode_error(record: Record) -> None:
    for decoder in (decode, DECODER):
        try:
            decoded = decoder(record)
        except DecodeError as exc:
            message = str(exc)  # the dead letter says why
            assert message
            continue
        event("decoded")
        for name in ("id", "type", "source", "specversion"):
            assert isinstance(getattr(decoded, name), str)
            assert getattr(decoded, name)


@PROPERTY
@given(data=JSON_DATA, attributes=st.dictionaries(KEYS, SCALARS, max_size=4))
def test_any_json_in_a_structured_event_decodes_or_is_a_decode_error(
    data: Any, attributes: dict[str, Any]
) -> None:
    document = {"specversion": "1.0", "id": "e", "type": "t", "source": "s", **attributes}
    record = Record("events", 0, 0, None, json.dumps({**document, "data": data}).encode(), ())
    try:
        decoded = DECODER(record)
    except DecodeError:
        return
    assert json.dumps(decoded.data) == json.dumps(data)  # as sent (NaN is not equal to NaN)


# -- mapping and rendering -----------------------------------------------------------------


def well_formed(hook: Hook, body: bytes) -> None:
    """The body reads back with the standard library in its own format."""
    if hook.format == "json":
        json.loads(body)
    elif hook.format == "xml":
        ElementTree.fromstring(body)
    elif hook.format == "csv":
        list(
            csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=hook.csv_delimiter)
        )
    else:
        parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)


@PROPERTY
@given(hook=hooks(), data=JSON_DATA)
@example(
    hook=hook_from_definition(
        {"id": "x", "events": ["t"], "url": "https://x.example.com", "format": "xml"}, "x"
    ),
    data={"@1bad": 1},
)
def test_any_data_for_any_hook_renders_a_well_formed_body_or_a_typed_error(
    hook: Hook, data: Any
) -> None:
    try:
        request = build_request(hook, events_with(data), "msg_fuzz")
    except (RenderError, PayloadTooLarge) as exc:  # both DispatcherError: a dead letter
        event(type(exc).__name__)
        message = str(exc)
        assert message.startswith(f"hook {hook.id}") or "cannot build" in message
        return
    event(f"rendered {hook.format}")
    assert len(request.content) <= hook.max_payload_bytes
    well_formed(hook, request.content)


@settings(PROPERTY, max_examples=150)
@given(hook=hooks(fields=True), text=TEXT)
def test_braces_in_data_are_never_evaluated_as_a_template(hook: Hook, text: str) -> None:
    secret = "S3CR3T-never-rendered"
    # `data.hidden` is reachable only by evaluating the braces that `data.a` and `data.b` hold
    data = {"a": "{data.hidden}", "b": "{{data.hidden}}", "sku": text, "hidden": secret}
    copies_all = any(f.source == "data" or "{data}" in (f.template or "") for f in hook.fields)
    assume(not copies_all)
    try:
        body = render_body(hook, events_with(data)).content
    except (RenderError, PayloadTooLarge):
        return
    assert secret.encode() not in body


def test_every_failure_these_stages_raise_is_a_dispatcher_error_with_its_kind() -> None:
    kinds = {DecodeError: "decode", RenderError: "render", PayloadTooLarge: "payload_too_large"}
    for error, kind in kinds.items():
        assert issubclass(error, DispatcherError)
        assert error("x").kind == kind  # the dead letter's dispatcher.error.kind


# -- hostile inputs, by example ------------------------------------------------------------


def structured(data_json: str) -> Record:
    value = '{"specversion":"1.0","id":"e","type":"t","source":"s","data":' + data_json + "}"
    return Record("events", 0, 0, None, value.encode(), ())


@pytest.mark.parametrize(
    "value",
    [b"not json at all", b"\xff\xfe\xfd", b"", b"{", b"null", b"42", b'"a string"', b"[1, 2]",
     b"true", b"NaN"],
)  # fmt: skip
def test_values_that_are_not_a_json_object_are_decode_errors(value: bytes) -> None:
    with pytest.raises(DecodeError):
        DECODER(Record("events", 0, 0, None, value, ()))


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_ten_thousand_levels_of_nesting_are_a_decode_error(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    deep = opening * 10_000 + "1" + closing * 10_000
    with pytest.raises(DecodeError, match="nest"):
        DECODER(structured(deep))
    binary = (("ce_specversion", b"1.0"), ("ce_id", b"e"), ("ce_type", b"t"), ("ce_source", b"s"))
    with pytest.raises(DecodeError, match="nest"):
        DECODER(Record("events", 0, 0, None, deep.encode(), binary))


@pytest.mark.parametrize("fmt", ["json", "csv", "xml", "form"])
def test_data_nested_ten_thousand_levels_is_a_render_error_not_a_crash(fmt: str) -> None:
    deep: Any = "leaf"
    for _ in range(10_000):
        deep = {"a": deep}
    hook = Hook.from_dict({"id": "deep", "events": ["t"], "url": "https://d.example.com",
                           "format": fmt, "max_payload_bytes": 1 << 20})  # fmt: skip
    with pytest.raises(RenderError, match="nests too deeply"):
        render_body(hook, events_with({"a": deep}))


@pytest.mark.parametrize("fmt", ["json", "csv", "xml", "form"])
def test_a_one_megabyte_string_decodes_and_renders_up_to_the_payload_limit(fmt: str) -> None:
    huge = "\u00e9" * (1 << 19)  # 1 MiB of UTF-8
    event = DECODER(structured(json.dumps({"note": huge})))
    assert event.data == {"note": huge}
    raw = {"id": "big", "events": ["t"], "url": "https://b.example.com", "format": fmt,
           "fields": [{"name": "note", "from": "data.note"}]}  # fmt: skip
    with pytest.raises(PayloadTooLarge, match="above max_payload_bytes 65536"):
        render_body(hook_from_definition(raw, "big"), event)
    roomy = hook_from_definition({**raw, "max_payload_bytes": 4 << 20}, "big")
    assert len(render_body(roomy, event).content) > 1 << 20


@pytest.mark.parametrize(
    ("kind", "value"),
    [("decimal", "12,50"), ("integer", "ten"), ("integer", "1.5"), ("boolean", "maybe"),
     ("datetime", "yesterday"), ("decimal", "NaN"), ("decimal", {"amount": 1}), ("integer", [1])],
)  # fmt: skip
def test_a_value_that_is_not_of_the_mapped_type_is_a_render_error_naming_the_field(
    kind: str, value: Any
) -> None:
    raw = {"id": "typed", "events": ["t"], "url": "https://t.example.com",
           "fields": [{"name": "amount", "from": "data.total", "type": kind}]}  # fmt: skip
    with pytest.raises(RenderError, match=f"field 'amount': cannot convert to {kind}"):
        render_body(hook_from_definition(raw, "typed"), events_with({"total": value}))


@pytest.mark.parametrize("fmt", ["json", "csv", "xml", "form"])
def test_template_syntax_in_data_is_written_as_text(fmt: str) -> None:
    raw = {"id": "t", "events": ["t"], "url": "https://t.example.com", "format": fmt,
           "fields": [{"name": "text", "template": "Order {data.order}: {data.note}"},
                      {"name": "raw", "from": "data.note"}]}  # fmt: skip
    data = {"order": "{data.secret}", "note": "{id} {{x}} {", "secret": "S3CR3T"}
    body = render_body(hook_from_definition(raw, "t"), events_with(data)).content
    assert b"S3CR3T" not in body
    assert b"ev-1" not in body  # `{id}` in data stays text: it is not the event's id


@pytest.mark.parametrize(
    ("headers", "message"),
    [('{X-Bad: "a\\r\\nX-Injected: 1"}', "a header value cannot hold a line break"),
     ('{X-Bad: "a\\nb"}', "a header value cannot hold a line break"),
     ('{"X-Bad\\r\\nX-Injected": "1"}', "X-Bad")],
)  # fmt: skip
def test_static_headers_with_line_breaks_are_refused_at_load(headers: str, message: str) -> None:
    text = (
        "hooks:\n  - id: h\n    events: [t]\n    url: https://h.example.com\n"
        f"    headers: {headers}\n"
    )
    with pytest.raises(ConfigError, match=message):
        load_hooks_text(text, "hooks.yaml")
    # a hook arriving from the hook store passes the same checks
    raw = {"id": "h", "events": ["t"], "url": "https://h.example.com"}
    raw["headers"] = {"X-Bad": "a\r\nX-Injected: 1"}
    with pytest.raises(ConfigError, match="line break"):
        hook_from_definition(raw, "store")


# -- reading responses ---------------------------------------------------------------------

RESPONSE_SPECS = st.sampled_from(
    [ResponseSpec.from_dict(r) for r in (
        {"format": "json", "expect": [{"path": "status", "equals": "ok"}],
         "capture": {"id": "data.id"}},
        {"format": "xml", "expect": [{"path": "status", "in": ["ok", 1]}, {"path": "@code", "exists": True}]},
        {"format": "text", "expect": [{"path": "", "matches": "^OK"}], "max_bytes": 16},
        {"format": "json", "expect": [{"path": "items[3].x", "exists": False}]},
    )]
)  # fmt: skip


@PROPERTY
@given(
    spec=RESPONSE_SPECS,
    status=st.integers(0, 999),
    body=st.one_of(st.binary(max_size=64), JSON_DATA.map(lambda d: json.dumps(d).encode())),
    retry=st.one_of(st.none(), st.text(max_size=40)),
)
@example(spec=ResponseSpec.from_dict({"format": "xml", "expect": [{"path": "a", "exists": True}]}),
         status=200, body=b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
         retry=None)  # fmt: skip
def test_any_response_is_judged_without_raising(
    spec: ResponseSpec, status: int, body: bytes, retry: str | None
) -> None:
    headers = {} if retry is None else {"retry-after": retry}
    verdict = judge(spec, status, headers, body, now=1_700_000_000.0)
    assert verdict.ok == (verdict.kind is None)
    if verdict.retry_after is not None:
        assert 0 <= verdict.retry_after <= 3600
    failures, _captured = check_body(spec, body)
    assert all(isinstance(f, str) for f in failures)
    after = retry_after(retry, 1_700_000_000.0)
    assert after is None or 0 <= after <= 3600


def encode_as(coding: str, body: bytes) -> tuple[str, bytes]:
    if coding == "raw-deflate":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return "deflate", compressor.compress(body) + compressor.flush()
    if coding == "gzip":
        return "gzip", gzip.compress(body)
    if coding == "deflate":
        return "deflate", zlib.compress(body)
    return coding, body


@PROPERTY
@given(
    body=st.binary(max_size=4096),
    coding=st.sampled_from(["gzip", "deflate", "raw-deflate", "identity", "br", ""]),
    cap=st.integers(1, 5000),
    split=st.integers(1, 64),
)
def test_inflating_yields_the_body_up_to_the_cap_and_never_more(
    body: bytes, coding: str, cap: int, split: int
) -> None:
    header, wire = encode_as(coding, body)
    inflater = Inflater(header)
    out = b""
    for start in range(0, len(wire), split):
        piece = inflater.feed(wire[start : start + split], cap - len(out))
        assert len(out) + len(piece) <= cap
        out += piece
        if len(out) >= cap or inflater.finished:
            break
    assert out == body[:cap]


@PROPERTY
@given(garbage=st.binary(min_size=1, max_size=256), coding=st.sampled_from(["gzip", "deflate"]))
def test_garbage_under_a_coding_is_a_decoding_error_or_nothing(garbage: bytes, coding: str) -> None:
    inflater = Inflater(coding)
    try:
        out = inflater.feed(garbage, 1 << 16)
    except httpx.DecodingError:
        return
    assert len(out) <= 1 << 16


def test_a_body_in_two_codings_is_refused() -> None:
    with pytest.raises(httpx.DecodingError, match="more than one coding"):
        Inflater("gzip, deflate")


def test_a_gzip_bomb_inflates_only_as_far_as_the_room() -> None:
    bomb = gzip.compress(bytes(64 << 20))
    inflater = Inflater("gzip")
    assert len(inflater.feed(bomb, 1000)) == 1000
