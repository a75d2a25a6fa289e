"""A producer's own CloudEvents extension attributes (`region: eu`) reach hooks as `extensions`,
from structured and binary mode alike; `tenant` and the trace context keep their own places."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dispatcher.errors import DecodeError
from dispatcher.model.event import Event, Record
from dispatcher.pipeline.decode import decode

ATTRIBUTES = {"specversion": "1.0", "id": "ev-1", "type": "order.shipped", "source": "/orders"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def structured(document: dict[str, Any]) -> Record:
    headers = (("content-type", b"application/cloudevents+json"),)
    return Record("dugaa.events", 0, 0, None, json.dumps(document).encode(), headers)


def binary(*headers: tuple[str, bytes | None]) -> Record:
    ce = tuple((f"ce_{name}", value.encode()) for name, value in ATTRIBUTES.items())
    return Record("dugaa.events", 0, 0, None, b"{}", (*ce, *headers))


def test_a_structured_event_keeps_every_extension_with_its_json_type() -> None:
    document = {**ATTRIBUTES, "region": "eu", "priority": 2, "urgent": True, "data": {"n": 1}}

    event = decode(structured(document))

    assert event.extensions == {"region": "eu", "priority": 2, "urgent": True}
    assert event.data == {"n": 1}


def test_context_attributes_data_and_the_extensions_with_a_place_are_no_extensions() -> None:
    document = {
        **ATTRIBUTES,
        "time": "2026-11-29T10:00:00Z",
        "subject": "order-7",
        "datacontenttype": "application/json",
        "dataschema": "https://example.com/order.json",
        "tenant": "acme",
        "traceparent": TRACEPARENT,
        "tracestate": "a=1",
        "data_base64": "eyJuIjoxfQ==",
        "channel": "web",
    }

    event = decode(structured(document))

    assert event.extensions == {"channel": "web"}
    assert (event.tenant, event.traceparent, event.tracestate) == ("acme", TRACEPARENT, "a=1")


def test_an_event_without_extensions_has_none() -> None:
    assert decode(structured({**ATTRIBUTES, "data": {}})).extensions == {}
    assert decode(binary(("content-type", b"application/json"))).extensions == {}


def test_a_null_extension_is_no_extension() -> None:
    assert decode(structured({**ATTRIBUTES, "region": None, "b": "x"})).extensions == {"b": "x"}


def test_names_and_values_outside_the_cloudevents_rules_are_kept_as_sent_not_refused() -> None:
    """CloudEvents asks for names of a-z0-9 and values that are text, integers or booleans; an
    event that strays was delivered before extensions reached hooks, and still is."""
    document = {**ATTRIBUTES, "Region": "eu", "my_ext": 1.5, "geo": {"zone": "w"}, "tags": [1]}

    event = decode(structured(document))

    assert event.extensions == {"Region": "eu", "my_ext": 1.5, "geo": {"zone": "w"}, "tags": [1]}


def test_an_extension_with_a_lone_surrogate_does_not_decode_as_a_text_attribute_does() -> None:
    value = json.dumps({**ATTRIBUTES, "region": "x"}).encode().replace(b'"x"', b'"\\ud800"')

    with pytest.raises(DecodeError, match=r"lone surrogate\) in extensions\.region$"):
        decode(Record("dugaa.events", 0, 0, None, value, ()))


def test_a_binary_event_keeps_every_ce_header_beyond_the_known_ones_as_text() -> None:
    event = decode(
        binary(
            ("ce_region", b"eu"),
            ("CE_Priority", b"2"),  # header names are case-insensitive: lower-cased
            ("ce_tenant", b"acme"),
            ("ce_traceparent", TRACEPARENT.encode()),
            ("ce_nothing", None),  # a header without a value is no attribute
            ("content-type", b"application/json"),
            ("x-other", b"not an attribute"),
        )
    )

    assert event.extensions == {"region": "eu", "priority": "2"}
    assert (event.tenant, event.traceparent) == ("acme", TRACEPARENT)


def test_a_binary_extension_that_is_not_utf8_is_a_decode_error_naming_its_header() -> None:
    with pytest.raises(DecodeError, match="header ce_region is not UTF-8 text"):
        decode(binary(("ce_region", b"\xff")))


def test_extensions_are_a_root_of_the_paths_hooks_address_beside_the_tenant() -> None:
    event = decode(structured({**ATTRIBUTES, "tenant": "acme", "region": "eu"}))

    attributes = event.attributes()

    assert (attributes["extensions"], attributes["tenant"]) == ({"region": "eu"}, "acme")


def test_an_event_made_from_a_dict_puts_every_attribute_in_its_own_field() -> None:
    """`from_dict` builds the event from its fields' positions: each lands where it belongs."""
    attributes = {
        "id": "i",
        "type": "t",
        "source": "s",
        "specversion": "1.0",
        "time": "tm",
        "subject": "sb",
        "datacontenttype": "ct",
        "data": {"d": 1},
        "tenant": "tn",
        "traceparent": "tp",
        "tracestate": "ts",
        "region": "eu",
    }

    event = Event.from_dict(attributes)

    assert event == Event(
        id="i",
        type="t",
        source="s",
        specversion="1.0",
        time="tm",
        subject="sb",
        datacontenttype="ct",
        data={"d": 1},
        tenant="tn",
        traceparent="tp",
        tracestate="ts",
        extensions={"region": "eu"},
    )
