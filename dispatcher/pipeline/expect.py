"""Check a response body against a hook's `expect` entries and pick its `capture` values. Pure.

The body is read as `response.format`: json, xml or text. Paths are dotted, as in field
mapping; "" or "." is the whole body (the only path text has). In xml the root element is
the document: `status` is `<root><status>`, `@code` an attribute of the root, `item[1]` the
second `<item>`, and namespaces are ignored. XML is parsed with DTDs and entities forbidden,
so a hostile response cannot expand or fetch anything, and nested at most `MAX_DEPTH` levels
deep (the bound events have), so it cannot exhaust the stack either.
The `expect` entries are conditions, checked by the one condition engine (`conditions.py`)
that also checks hook filters.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from dispatcher.errors import UnreadableResponse
from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.conditions import failures
from dispatcher.pipeline.decode import MAX_DEPTH, read_json
from dispatcher.pipeline.render.paths import MISSING, lookup, parse_path

SHOWN = 80  # characters of a parser message quoted in a failure


def check_body(spec: ResponseSpec, body: bytes) -> tuple[list[str], dict[str, Any]]:
    """The failed expectations (as messages) and the captured values for `body`."""
    if not spec.expect and not spec.capture:
        return [], {}
    try:
        document = parse_body(spec.format, body[: spec.max_bytes + 1], spec.max_bytes)
    except UnreadableResponse as exc:
        return ([str(exc)] if spec.expect else []), {}
    xml = spec.format == "xml"
    failed = failures(spec.expect, document, xml=xml)
    captured: dict[str, Any] = {}
    for name, path in spec.capture:
        value = _find(document, path, xml)
        if value is not MISSING:
            captured[name] = value
    return failed, captured


def parse_body(fmt: str, body: bytes, limit: int) -> Any:
    """The body as a document to walk; raise `UnreadableResponse` saying why it cannot be."""
    if len(body) > limit:
        raise UnreadableResponse(f"response body is larger than {limit} bytes; not checked")
    if fmt == "text":
        return body.decode("utf-8", errors="replace")
    if fmt == "json":
        try:
            return read_json(body)
        except (ValueError, RecursionError) as exc:
            raise UnreadableResponse(f"response is not valid JSON: {_clip(str(exc))}") from None
    if fmt == "xml":
        try:
            root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except (ParseError, DefusedXmlException) as exc:
            raise UnreadableResponse(f"response is not acceptable XML: {_clip(str(exc))}") from None
        return element_tree(root)
    raise UnreadableResponse(f"unknown response format {fmt!r}")


def element_tree(element: Element, depth: int = 0) -> Any:
    """An element as nested values: text for a bare element, else an object of children.

    Children appear by local name (a repeated name becomes a list), attributes as `@name`,
    the element's own text (when it has children or attributes) as `#text`. An element more
    than `MAX_DEPTH` levels deep raises `UnreadableResponse`.
    """
    if depth > MAX_DEPTH:
        raise UnreadableResponse(f"response XML nests deeper than {MAX_DEPTH} levels")
    children: dict[str, Any] = {}
    repeated: set[str] = set()
    for name, value in element.attrib.items():
        children["@" + _local(name)] = value
    for child in element:
        name, value = _local(child.tag), element_tree(child, depth + 1)
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


def _local(tag: str) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else str(tag)


def _find(document: Any, path: str, xml: bool) -> Any:
    try:
        steps = parse_path(path)
    except ValueError:
        return MISSING
    return lookup(document, steps, scalar_is_list=xml)


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
