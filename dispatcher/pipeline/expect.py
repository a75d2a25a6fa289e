"""Check a response body against a hook's `expect` entries and pick its `capture` values. Pure.

The body is read as `response.format`: json, xml or text. Paths are dotted, as in field
mapping; "" or "." is the whole body (the only path text has). In xml the root element is
the document: `status` is `<root><status>`, `@code` an attribute of the root, `item[1]` the
second `<item>`, and namespaces are ignored (a path's prefixes too: `soap:Body` is `Body`).
XML is parsed with DTDs and entities forbidden, so a hostile response cannot expand or fetch
anything, and nested at most `MAX_DEPTH` levels deep (the bound events have), so it cannot
exhaust the stack either. Text is decoded as a
browser decodes it: a UTF-8 or UTF-16 byte order mark decides (and is not part of the text),
else the `charset` of the Content-Type, else UTF-8; bytes that do not decode are replacement
characters, never an error.
The `expect` entries are conditions, checked by the one condition engine (`conditions.py`)
that also checks hook filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dispatcher.errors import UnreadableResponse
from dispatcher.model.condition import Condition
from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.charsets import charset, codec
from dispatcher.pipeline.conditions import failure, failures
from dispatcher.pipeline.decode import read_json, read_json_exact
from dispatcher.pipeline.render.paths import MISSING, lookup, parse_path
from dispatcher.pipeline.xmlvalues import XmlError, local_path, xml_values

SHOWN = 80  # characters of a parser message quoted in a failure
# byte order marks and what they say, as the WHATWG Encoding standard sniffs them
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


def check_body(
    spec: ResponseSpec, body: bytes, content_type: str = ""
) -> tuple[list[str], dict[str, Any]]:
    """The failed expectations (as messages) and the captured values for `body`, an answer of
    `content_type` (its Content-Type header)."""
    if not spec.expect and not spec.capture:
        return [], {}
    try:
        document = parse_body(spec.format, body[: spec.max_bytes + 1], spec.max_bytes, content_type)
    except UnreadableResponse as exc:
        return ([str(exc)] if spec.expect else []), {}
    xml = spec.format == "xml"
    if spec.format == "json" and any(_inexact(c, document) for c in spec.expect):
        try:
            exact = read_json_exact(json_bytes(body, content_type))
            failed = _exact_failures(spec.expect, document, exact)
        except (ValueError, RecursionError) as exc:  # read once already, within the bound
            return [f"response is not valid JSON: {_clip(str(exc))}"], {}
    else:
        failed = failures(spec.expect, document, xml=xml)
    captured: dict[str, Any] = {}
    for name, path in spec.capture:
        value = _find(document, path, xml)
        if value is not MISSING:
            captured[name] = value
    return failed, captured


def parse_body(fmt: str, body: bytes, limit: int, content_type: str = "") -> Any:
    """The body as a document to walk; raise `UnreadableResponse` saying why it cannot be."""
    if len(body) > limit:
        raise UnreadableResponse(f"response body is larger than {limit} bytes; not checked")
    if fmt == "text":
        return decode_text(body, content_type)
    if fmt == "json":
        try:
            return read_json(json_bytes(body, content_type))
        except (ValueError, RecursionError) as exc:
            raise UnreadableResponse(f"response is not valid JSON: {_clip(str(exc))}") from None
    if fmt == "xml":
        try:
            return xml_values(body)
        except XmlError as exc:
            # read as the Content-Type's charset says (a document with no declaration of its
            # own in ISO-8859-1, say), when it does not read as it stands
            if (utf8 := transcoded(body, content_type)) is not None:
                try:
                    return xml_values(utf8, encoding="utf-8")
                except XmlError:
                    pass
            raise UnreadableResponse(f"response is not acceptable XML: {_clip(str(exc))}") from None
    raise UnreadableResponse(f"unknown response format {fmt!r}")


def json_bytes(body: bytes, content_type: str) -> bytes:
    """The JSON answer `body` as UTF-8: as it is when it is (JSON's own encoding, RFC 8259), else
    as the Content-Type's `charset` says (`application/json; charset=iso-8859-1` from an older
    server), else as it is (UTF-16 and UTF-32 the JSON reader finds by itself)."""
    if body.isascii():
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return transcoded(body, content_type) or body
    return body


def transcoded(body: bytes, content_type: str) -> bytes | None:
    """`body` decoded by the Content-Type's `charset` and written as UTF-8; None without one,
    with one Python does not know or that is UTF-8 already, or when the body does not decode
    in it."""
    named = codec(charset(content_type))
    if named is None or named in ("utf_8", "utf8"):
        return None
    try:
        return body.decode(named).encode("utf-8")
    except (LookupError, UnicodeError):  # not a text encoding (base64), or not its bytes
        return None


def decode_text(body: bytes, content_type: str) -> str:
    """`body` as text: by its byte order mark (left out), else the Content-Type's `charset`,
    else UTF-8. A charset Python does not know is ignored as a missing one is (UTF-8): the
    checks then see replacement characters where its bytes are not UTF-8."""
    for bom, encoding in BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    named = codec(charset(content_type))
    if named is not None:
        try:
            return body.decode(named, errors="replace")
        except (LookupError, UnicodeError):  # no text encoding (base64), or no `replace` (idna)
            pass
    return body.decode("utf-8", errors="replace")


def _inexact(condition: Condition, document: Any) -> bool:
    """Whether `condition` compares a JSON number that a float may not hold as written (one with
    a fraction or an exponent). Such a condition is checked on the answer read exactly
    (`read_json_exact`), so that it holds as if the answer always were; an answer whose checked
    values are texts, integers, booleans or containers (most) is read once only."""
    if all(operator == "exists" for operator, _ in condition.tests):
        return False
    try:
        return isinstance(lookup(document, parse_path(condition.path)), float)
    except ValueError:
        return False


def _exact_failures(conditions: Iterable[Condition], document: Any, exact: Any) -> list[str]:
    """`failures`, each condition on a number with a fraction checked on the exact reading."""
    found = (failure(c, exact if _inexact(c, document) else document) for c in conditions)
    return [message for message in found if message is not None]


def _find(document: Any, path: str, xml: bool) -> Any:
    try:
        steps = parse_path(path)
    except ValueError:
        return MISSING
    if xml:
        steps = local_path(steps)
    return lookup(document, steps, scalar_is_list=xml)


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
