"""Property tests: whatever text the event holds, each format reads back, with the standard
library, to exactly the values mapped (commas, quotes, newlines, `<`, `&`, unicode)."""

from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.render import render_body

PROPERTY = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
TRICKY = st.sampled_from([",", ";", '"', "'", "\n", "\r", "\r\n", "<", ">", "&", "]]>", " ", "\t"])
TEXT = st.lists(st.one_of(st.text(), TRICKY), max_size=6).map("".join)
# XML 1.0 can carry these characters only; others are replaced (tested separately).
XML_CHAR = st.one_of(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters="\ufffe\uffff"),
    st.sampled_from("\t\n\r"),
)
XML_TEXT = st.lists(st.one_of(st.text(XML_CHAR), TRICKY), max_size=6).map("".join)
XML_NAME = st.from_regex(
    r"[A-Za-z_\u00c0-\u00d6\u4e00-\u4e10][A-Za-z0-9_\-\u00b7]{0,8}", fullmatch=True
)
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(fmt: str, names: list[str], values: list[str], **extra: object) -> bytes:
    fields = [{"name": n, "from": f"data.v[{i}]"} for i, n in enumerate(names)]
    raw = {"id": "p", "events": ["t"], "url": "https://p.example.com", "format": fmt}
    hook = Hook.from_dict({**raw, "fields": fields, "max_payload_bytes": 10**7, **extra})
    return render_body(hook, Event(id="e", type="t", source="s", data={"v": values})).content


@st.composite
def table(draw: st.DrawFn, text: st.SearchStrategy[str] = TEXT) -> tuple[list[str], list[str]]:
    names = draw(st.lists(text.filter(bool), min_size=1, max_size=5))
    values = draw(st.lists(text, min_size=len(names), max_size=len(names)))
    return names, values


@PROPERTY
@given(table(), st.sampled_from([",", ";", "\t", "|"]), st.booleans())
def test_csv_reads_back_to_the_same_cells(
    cells: tuple[list[str], list[str]], delimiter: str, header: bool
) -> None:
    names, values = cells
    content = render("csv", names, values, csv={"delimiter": delimiter, "header": header})
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline=""), delimiter=delimiter))
    assert rows == ([names] if header else []) + [values]


@PROPERTY
@given(st.lists(XML_NAME, min_size=1, max_size=5, unique=True), st.data())
def test_xml_reads_back_to_the_same_text(names: list[str], data: st.DataObject) -> None:
    values = data.draw(st.lists(XML_TEXT, min_size=len(names), max_size=len(names)))
    attribute = data.draw(XML_TEXT)
    content = render("xml", [*names, "@note"], [*values, attribute], xml={"root": "r"})
    root = ElementTree.fromstring(content)
    assert [child.tag for child in root] == names
    assert [child.text or "" for child in root] == values
    assert root.get("note") == attribute


@PROPERTY
@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_xml_is_well_formed_whatever_the_text(text: str) -> None:
    root = ElementTree.fromstring(render("xml", ["a", "@b"], [text, text]))
    assert root.findtext("a") == NOT_XML.sub("\ufffd", text)
    assert root.get("b") == NOT_XML.sub("\ufffd", text)


@PROPERTY
@given(table())
def test_json_reads_back_to_the_same_values(cells: tuple[list[str], list[str]]) -> None:
    names, values = cells
    names = list(dict.fromkeys(n.replace(".", "") or "x" for n in names))  # dots nest
    values = values[: len(names)]
    document = json.loads(render("json", names, values))
    assert document == dict(zip(names, values, strict=True))


@PROPERTY
@given(table())
def test_form_reads_back_to_the_same_pairs(cells: tuple[list[str], list[str]]) -> None:
    names, values = cells
    content = render("form", names, values).decode("ascii")
    assert parse_qsl(content, keep_blank_values=True) == list(zip(names, values, strict=True))
