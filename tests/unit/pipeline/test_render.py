"""render_body: each format with and without fields, content types, limits and errors."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import pytest

from dispatcher.errors import PayloadTooLarge, RenderError
from dispatcher.model.body import Body
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.render import render_body
from dispatcher.pipeline.render.formats import nest

DATA = {
    "order_id": "A-7",
    "total": 19.99,
    "customer": {"name": 'Ann "A" <Smith> & Co, Ltd', "phone": "+254 700"},
    "items": [{"sku": "X", "qty": 2}, {"sku": "Y", "qty": 1}],
}
EVENT = Event(id="e-1", type="order.placed", source="/o", data=DATA)
FIELDS = [
    {"name": "to", "from": "data.customer.phone", "required": True},
    {"name": "customer.name", "from": "data.customer.name"},
    {"name": "customer.@vip", "value": True},
    {"name": "amount", "from": "data.total", "type": "decimal", "format": "0.00"},
    {"name": "text", "template": "Order {data.order_id}, first {data.items[0].sku}"},
]


def hook(fmt: str, *, fields: Any = (), **extra: Any) -> Hook:
    raw = {"id": "h", "events": ["x"], "url": "https://h.example.com/", "format": fmt}
    return Hook.from_dict({**raw, "fields": list(fields), **extra})


def render(fmt: str, *, fields: Any = FIELDS, event: Event = EVENT, **extra: Any) -> Body:
    return render_body(hook(fmt, fields=fields, **extra), event)


def test_json_nests_dotted_names_in_written_order() -> None:
    body = render("json")
    assert body.media_type == "application/json"
    assert body.content == (
        b'{"to":"+254 700","customer":{"name":"Ann \\"A\\" <Smith> & Co, Ltd","@vip":true},'
        b'"amount":19.99,"text":"Order A-7, first X"}'
    )
    assert list(json.loads(body.content)) == ["to", "customer", "amount", "text"]


def test_json_without_fields_is_the_data_as_is() -> None:
    body = render("json", fields=())
    assert json.loads(body.content) == DATA


def test_json_writes_unicode_as_utf8() -> None:
    event = Event(id="e", type="t", source="s", data={"name": "Zoë 张"})
    assert render("json", fields=(), event=event).content == '{"name":"Zoë 张"}'.encode()


def test_csv_writes_header_and_one_row_with_quoting() -> None:
    body = render("csv")
    assert body.media_type == "text/csv; charset=utf-8"
    assert body.content == (
        b"to,customer.name,customer.@vip,amount,text\r\n"
        b'+254 700,"Ann ""A"" <Smith> & Co, Ltd",true,19.99,"Order A-7, first X"\r\n'
    )


def test_csv_header_off_and_other_delimiter() -> None:
    body = render("csv", csv={"delimiter": ";", "header": False})
    rows = list(csv.reader(io.StringIO(body.content.decode(), newline=""), delimiter=";"))
    assert rows == [
        ["+254 700", 'Ann "A" <Smith> & Co, Ltd', "true", "19.99", "Order A-7, first X"]
    ]


def test_csv_without_fields_writes_objects_as_rows() -> None:
    event = Event(id="e", type="t", source="s", data=DATA["items"])
    assert render("csv", fields=(), event=event).content == b"sku,qty\r\nX,2\r\nY,1\r\n"
    flat = render("csv", fields=()).content.decode().splitlines()
    assert flat[0] == "order_id,total,customer.name,customer.phone,items"


def test_xml_nests_elements_and_attributes_and_escapes() -> None:
    body = render("xml", xml={"root": "Order"})
    assert body.media_type == "application/xml; charset=utf-8"
    assert body.content == (
        b'<?xml version="1.0" encoding="UTF-8"?><Order><to>+254 700</to>'
        b'<customer vip="true"><name>Ann "A" &lt;Smith&gt; &amp; Co, Ltd</name></customer>'
        b"<amount>19.99</amount><text>Order A-7, first X</text></Order>"
    )
    root = ElementTree.fromstring(body.content)
    assert root.findtext("customer/name") == DATA["customer"]["name"]  # type: ignore[index]


def test_xml_without_fields_writes_lists_as_items() -> None:
    body = render("xml", fields=(), xml={"item": "line", "namespace": "urn:x"})
    root = ElementTree.fromstring(body.content)
    assert root.tag == "{urn:x}message"
    skus = [e.text for e in root.iterfind("{urn:x}items/{urn:x}line/{urn:x}sku")]
    assert skus == ["X", "Y"]


def test_xml_null_is_an_empty_element() -> None:
    fields = [{"name": "a", "from": "data.nope"}]
    assert render("xml", fields=fields).content.endswith(b"<message><a/></message>")


def test_xml_data_key_that_is_no_element_name_is_a_render_error() -> None:
    event = Event(id="e", type="t", source="s", data={"first name": "x"})
    with pytest.raises(RenderError, match="'first name' cannot be an XML element name"):
        render("xml", fields=(), event=event)


@pytest.mark.parametrize(
    ("data", "namespace"),
    [
        ({"@xmlns": "urn:evil", "a": 1}, None),
        ({"@xmlns": "urn:evil", "a": 1}, "urn:hook"),
        ({"child": {"@xmlns": "urn:evil", "b": 2}}, "urn:hook"),
        ({"@xmlns:x": "urn:evil", "a": 1}, None),
    ],
)
def test_xml_data_never_declares_a_namespace(data: dict[str, Any], namespace: str | None) -> None:
    event = Event(id="e", type="t", source="s", data=data)
    xml = {"root": "r", **({"namespace": namespace} if namespace else {})}
    with pytest.raises(RenderError, match="xmlns"):
        render("xml", fields=(), event=event, xml=xml)


def test_xml_names_follow_expat_where_it_is_narrower_than_xml_fifth_edition() -> None:
    """U+F900 starts a name in XML 1.0's fifth edition, not in expat's tables (found by the
    fuzz test): such a key is a render error, never a body the receiver cannot parse."""
    compatibility, unified = "\uf900", "\u8c48"  # both look alike; only the second is a name
    with pytest.raises(RenderError, match="cannot be an XML element name"):
        render("xml", fields=(), event=Event(id="e", type="t", source="s", data={compatibility: 1}))
    body = render("xml", fields=(), event=Event(id="e", type="t", source="s", data={unified: 1}))
    assert ElementTree.fromstring(body.content).findtext(unified) == "1"


def test_xml_replaces_characters_xml_cannot_carry() -> None:
    event = Event(id="e", type="t", source="s", data={"a": "bell\x07 cr\r end"})
    body = render("xml", fields=(), event=event)
    assert b"<a>bell\xef\xbf\xbd cr&#13; end</a>" in body.content
    assert ElementTree.fromstring(body.content).findtext("a") == "bell\ufffd cr\r end"


def test_form_urlencodes_pairs_in_order_and_repeats_list_keys() -> None:
    body = render("form")
    assert body.media_type == "application/x-www-form-urlencoded"
    assert body.content.startswith(b"to=%2B254+700&customer.name=Ann+%22A%22+%3CSmith%3E+%26+Co")
    assert [name for name, _ in parse_qsl(body.content.decode())] == [f["name"] for f in FIELDS]
    event = Event("e", "t", "s", data={"to": ["a", "b"]})
    listed = render("form", fields=[{"name": "to", "from": "data.to"}], event=event)
    assert parse_qsl(listed.content.decode()) == [("to", "a"), ("to", "b")]


def test_a_required_form_field_with_an_empty_list_is_written_empty_never_left_out() -> None:
    # a list repeats its key, so none leaves it out; a required field is never silently absent:
    # it is written empty, as a null is, and as json ([]), csv and xml write an empty list
    event = Event("e", "t", "s", data={"to": [], "cc": []})
    fields = [
        {"name": "to", "from": "data.to", "required": True},
        {"name": "cc", "from": "data.cc"},
        {"name": "text", "value": "hi"},
    ]
    body = render("form", fields=fields, event=event)
    assert parse_qsl(body.content.decode(), keep_blank_values=True) == [("to", ""), ("text", "hi")]
    assert json.loads(render("json", fields=fields, event=event).content)["to"] == []


def test_form_without_fields_flattens_objects() -> None:
    body = render("form", fields=())
    pairs = dict(parse_qsl(body.content.decode()))
    assert pairs["customer.phone"] == "+254 700"
    assert pairs["total"] == "19.99"


def test_form_without_fields_needs_an_object() -> None:
    with pytest.raises(RenderError, match="form needs the event data to be an object"):
        render("form", fields=(), event=Event("e", "t", "s", data=[1]))


def test_missing_required_field_is_a_render_error_naming_hook_and_field() -> None:
    event = Event(id="e", type="t", source="s", data={})
    with pytest.raises(RenderError, match="hook h: field 'to' is required") as caught:
        render("json", event=event)
    assert caught.value.kind == "render"


def test_body_above_the_limit_is_payload_too_large() -> None:
    body = render("json")
    render("json", max_payload_bytes=len(body.content))
    with pytest.raises(PayloadTooLarge, match=rf"{len(body.content)} bytes") as caught:
        render("json", max_payload_bytes=len(body.content) - 1)
    assert caught.value.kind == "payload_too_large"


def test_lone_surrogate_in_data_is_a_render_error_not_a_crash() -> None:
    event = Event(id="e", type="t", source="s", data={"a": "\ud800"})
    assert render("json", fields=(), event=event).content == b'{"a":"\\ud800"}'
    with pytest.raises(RenderError, match="cannot write csv"):
        render("csv", fields=(), event=event)


def test_nest_refuses_a_name_that_is_both_value_and_object() -> None:
    with pytest.raises(ValueError, match="'a' is both a value and an object"):
        nest([("a", 1), ("a.b", 2)])
    with pytest.raises(ValueError, match=r"'a\.b' is written twice or is both"):
        nest([("a.b.c", 1), ("a.b", 2)])
    value = {"x": 1}
    with pytest.raises(ValueError, match="both a value and an object"):
        nest([("a", value), ("a.y", 2)])
    assert value == {"x": 1}
    with pytest.raises(ValueError, match="'a' is both a value and an object"):
        nest([("a", None), ("a.b", 2)])  # a null value is a value too


def test_csv_escape_formulas_prefixes_a_quote_to_text_a_spreadsheet_would_run() -> None:
    data = {
        "=cmd": '=HYPERLINK("http://127.0.0.1/")',
        "plus": "+1+2",
        "minus": "-2+3",
        "at": "@SUM(A1)",
        "tab": "\tx",
        "cr": "\rx",
        "plain": "Ann",
        "negative": -5,
        "price": Decimal("-19.99"),
    }
    event = Event(id="e", type="t", source="s", data=data)
    body = render("csv", fields=(), event=event, csv={"escape_formulas": True})
    header, row = csv.reader(io.StringIO(body.content.decode(), newline=""))
    assert header[0] == "'=cmd"
    assert row == [
        '\'=HYPERLINK("http://127.0.0.1/")',
        "'+1+2",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "Ann",
        "-5",
        "-19.99",
    ]


def test_csv_leaves_formulas_as_they_are_unless_asked() -> None:
    event = Event(id="e", type="t", source="s", data={"a": "=1+1"})
    assert render("csv", fields=(), event=event).content == b"a\r\n=1+1\r\n"
