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

from dispatcher.errors import UnreadableResponse
from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.conditions import failures
from dispatcher.pipeline.decode import read_json
from dispatcher.pipeline.render.paths import MISSING, lookup, parse_path
from dispatcher.pipeline.xmlvalues import XmlError, xml_values

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
            return xml_values(body)
        except XmlError as exc:
            raise UnreadableResponse(f"response is not acceptable XML: {_clip(str(exc))}") from None
    raise UnreadableResponse(f"unknown response format {fmt!r}")


def _find(document: Any, path: str, xml: bool) -> Any:
    try:
        steps = parse_path(path)
    except ValueError:
        return MISSING
    return lookup(document, steps, scalar_is_list=xml)


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
