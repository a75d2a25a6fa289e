"""Check a response body against a hook's `expect` entries and pick its `capture` values. Pure.

The body is read as `response.format`: json, xml or text. Paths are dotted, as in field
mapping; "" or "." is the whole body (the only path text has). In xml the root element is
the document: `status` is `<root><status>`, `@code` an attribute of the root, `item[1]` the
second `<item>`, and namespaces are ignored. XML is parsed with DTDs and entities forbidden,
so a hostile response cannot expand or fetch anything, and nested at most `MAX_DEPTH` levels
deep (the bound events have), so it cannot exhaust the stack either.
Comparisons are lenient across types where a response cannot say better: XML text `"42"`
equals `42`, JSON `true` equals `"true"`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from dispatcher.errors import UnreadableResponse
from dispatcher.model.response import Expectation, ResponseSpec
from dispatcher.pipeline.decode import MAX_DEPTH
from dispatcher.pipeline.render.convert import text_of
from dispatcher.pipeline.render.paths import MISSING, ROOT_PATHS, lookup, parse_path

SHOWN = 80  # characters of a response value quoted in a failure message


def check_body(spec: ResponseSpec, body: bytes) -> tuple[list[str], dict[str, Any]]:
    """The failed expectations (as messages) and the captured values for `body`."""
    if not spec.expect and not spec.capture:
        return [], {}
    try:
        document = parse_body(spec.format, body[: spec.max_bytes + 1], spec.max_bytes)
    except UnreadableResponse as exc:
        return ([str(exc)] if spec.expect else []), {}
    xml = spec.format == "xml"
    failures = [m for m in (_check(e, document, xml) for e in spec.expect) if m is not None]
    captured: dict[str, Any] = {}
    for name, path in spec.capture:
        value = _find(document, path, xml)
        if value is not MISSING:
            captured[name] = value
    return failures, captured


def parse_body(fmt: str, body: bytes, limit: int) -> Any:
    """The body as a document to walk; raise `UnreadableResponse` saying why it cannot be."""
    if len(body) > limit:
        raise UnreadableResponse(f"response body is larger than {limit} bytes; not checked")
    if fmt == "text":
        return body.decode("utf-8", errors="replace")
    if fmt == "json":
        try:
            return json.loads(body)
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


def _check(expectation: Expectation, document: Any, xml: bool) -> str | None:
    value = _find(document, expectation.path, xml)
    where = "the body" if expectation.path.strip() in ROOT_PATHS else expectation.path
    if expectation.exists is not None and expectation.exists != (value is not MISSING):
        return f"expected {where} to {'exist' if expectation.exists else 'be absent'}"
    if value is MISSING:
        if expectation.equals is not None or expectation.matches or expectation.one_of:
            return f"expected {where} to be present"
        return None
    if expectation.equals is not None and not same(value, expectation.equals):
        return f"expected {where} to equal {_show(expectation.equals)}, got {_show(value)}"
    if expectation.one_of is not None and not any(same(value, v) for v in expectation.one_of):
        choices = ", ".join(_show(v) for v in expectation.one_of)
        return f"expected {where} to be one of {choices}, got {_show(value)}"
    if expectation.matches is not None:
        try:
            found = _regex(expectation.matches).search(_text(value))
        except re.error as exc:
            return f"expect on {where}: invalid pattern: {exc}"
        if found is None:
            return f"expected {where} to match {expectation.matches!r}, got {_show(value)}"
    return None


def same(actual: Any, expected: Any) -> bool:
    """Whether a response value equals an expected one (text and numbers compared as text)."""
    if isinstance(actual, bool) != isinstance(expected, bool) and not (
        isinstance(actual, str) or isinstance(expected, str)
    ):
        return False
    if actual == expected:
        return True
    if isinstance(actual, str) or isinstance(expected, str):
        return _text(actual) == _text(expected)
    return False


def _find(document: Any, path: str, xml: bool) -> Any:
    try:
        steps = parse_path(path)
    except ValueError:
        return MISSING
    return lookup(document, steps, scalar_is_list=xml)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _text(value: Any) -> str:
    try:
        return text_of(value)
    except ValueError:
        return repr(value)


def _show(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, default=str))


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
