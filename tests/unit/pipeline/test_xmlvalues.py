"""An XML answer as nested values: the same values and the same refusals as reading it with
defusedxml's ElementTree parser and walking the tree, for any document."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import pytest
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import UnreadableResponse
from dispatcher.pipeline.decode import MAX_DEPTH
from dispatcher.pipeline.xmlvalues import XmlError, xml_values


def _by_elementtree(body: bytes) -> Any:
    """How answers were read before `xml_values`: defusedxml, then a walk of the tree."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as exc:
        raise XmlError(str(exc)) from None
    return _walk(root, 0)


def _walk(element: Element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UnreadableResponse(f"response XML nests deeper than {MAX_DEPTH} levels")
    children: dict[str, Any] = {}
    repeated: set[str] = set()
    for name, value in element.attrib.items():
        children["@" + name.rpartition("}")[2]] = value
    for child in element:
        name, value = child.tag.rpartition("}")[2], _walk(child, depth + 1)
        if name not in children:
            children[name] = value
        elif name in repeated:
            children[name].append(value)
        else:
            children[name] = [children[name], value]
            repeated.add(name)
    text = (element.text or "").strip()
    if not children:
        return text
    if text:
        children["#text"] = text
    return children


def _outcome(read: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "values", read(body)
    except XmlError as exc:
        return "refused", str(exc)
    except UnreadableResponse as exc:
        return "unreadable", str(exc)


_NAMES = st.sampled_from(["a", "b", "item", "Status", "x:a", "y:b", "ns:item"])
_GOOD_TEXT = ["", " ", "ok", " 12 ", "&amp;", "&lt;x&gt;", "&#233;", "é", "\n  "]
_GOOD_TEXT += ["<![CDATA[a<b]]>", "<!--c-->", "<?pi x?>"]
_BAD_TEXT = ["&undefined;", "&", "<", "]]>"]  # each makes the document ill-formed
_TEXT = st.sampled_from(_GOOD_TEXT * 12 + _BAD_TEXT)  # mostly well-formed documents
_VALUES = st.sampled_from(["", "1", " x ", "&amp;", "&#233;", "é", "a\tb", "&quot;"] * 6 + ["<"])


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_NAMES)
    attributes = draw(
        st.lists(
            st.tuples(st.sampled_from(["id", "code", "x:id", "y:id", "xml:lang"]), _VALUES),
            max_size=3,
            unique_by=lambda pair: pair[0],
        )
    )
    shown = "".join(f' {key}="{value}"' for key, value in attributes)
    inside = []
    if depth < 4:
        for _ in range(draw(st.integers(0, 3))):
            inside.append(draw(_TEXT))
            inside.append(draw(_element(depth + 1)))
    inside.append(draw(_TEXT))
    return f"<{name}{shown}>{''.join(inside)}</{name}>"


_NAMESPACES = ' xmlns:x="urn:x" xmlns:y="urn:y" xmlns:ns="urn:ns"'
_DECLARATIONS = st.sampled_from(
    ["", '<?xml version="1.0" encoding="UTF-8"?>'] * 6  # mostly none refused
    + [
        "<!DOCTYPE a>",
        '<!DOCTYPE a [<!ENTITY e "v">]>',
        '<!DOCTYPE a SYSTEM "http://127.0.0.1:9/a.dtd">',
    ]
)


@settings(max_examples=400)
@given(
    root=_element(),
    declaration=_DECLARATIONS,
    namespaces=st.sampled_from([True] * 5 + [False]),
    cut=st.integers(0, 40),
)
def test_the_values_and_refusals_are_elementtrees(
    root: str, declaration: str, namespaces: bool, cut: int
) -> None:
    if namespaces:  # declared on the root element; without, a prefix is unbound (ill-formed)
        head, _, rest = root.partition(">")
        root = f"{head}{_NAMESPACES}>{rest}"
    document = (declaration + root).encode()
    for body in (document, document[: max(len(document) - cut, 0)]):
        assert _outcome(xml_values, body) == _outcome(_by_elementtree, body)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, MAX_DEPTH + 3, 3000])  # root + 65 levels on
def test_a_document_past_the_depth_bound_is_unreadable_as_before(depth: int) -> None:
    body = b"<a>" * depth + b"</a>" * depth
    assert _outcome(xml_values, body) == _outcome(_by_elementtree, body)
    assert _outcome(xml_values, body)[0] == "unreadable"


def test_a_deep_document_that_is_also_broken_is_refused_as_broken() -> None:
    body = b"<a>" * (MAX_DEPTH + 5) + b"</b>"
    assert _outcome(xml_values, body) == _outcome(_by_elementtree, body)
    assert _outcome(xml_values, body)[0] == "refused"


def test_other_encodings_are_read_as_expat_reads_them() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><r><s>é</s></r>'.encode("utf-16")
    assert xml_values(body) == _by_elementtree(body) == {"s": "é"}
