"""The xml encoder: always well-formed, whatever the data holds. Pure.

An object becomes child elements in key order; a key written `@name` becomes an attribute and
`#text` the element's own text. A list becomes one `item` element (the name is configurable)
per entry. Null is an empty element. Text is escaped (`&`, `<`, `>`, and `\\r`, which a parser
would otherwise turn into `\\n`); characters XML 1.0 cannot carry at all (most control
characters, lone surrogates) are replaced by U+FFFD. Element and attribute names must be XML
names without a prefix: one that is not raises ValueError rather than being silently changed.
So does an attribute named `xmlns`: it would declare a namespace, so data could change what the
document means; the namespace is the hook's `xml.namespace` alone.
"""

from __future__ import annotations

import re
from typing import Any
from xml.parsers import expat

from dispatcher.pipeline.render.convert import text_of

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME = re.compile(f"[{_START}][{_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]*")
_NOT_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\n": "&#10;", "\t": "&#9;"}
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile('[&<>\r\n\t"]')
_NAMES: dict[str, bool] = {}  # names already judged (hook fields and data keys repeat)
_NAMES_KEPT = 4096


def is_xml_name(name: str) -> bool:
    """Whether `name` can be an element or attribute name: an XML Name without a `:` prefix,
    that expat accepts too. Expat (behind Python's and PHP's parsers, among others) still uses
    the older, narrower tables of name characters: it refuses U+F900 (a compatibility ideograph), which XML 1.0's
    fifth edition allows."""
    known = _NAMES.get(name)
    if known is None:
        known = _NAME.fullmatch(name) is not None and _expat_accepts(name)
        if len(_NAMES) < _NAMES_KEPT and len(name) <= 128:
            _NAMES[name] = known
    return known


def _expat_accepts(name: str) -> bool:
    parser = expat.ParserCreate()
    try:
        parser.Parse(f"<{name}/>", True)
    except expat.ExpatError:
        return False
    return True


def xml_body(
    root: str, document: Any, *, item: str = "item", namespace: str | None = None
) -> bytes:
    """The UTF-8 XML document with `document` under the element `root`."""
    out: list[str] = [DECLARATION]
    extra = {"xmlns": namespace} if namespace else {}
    _element(root, document, item, out, extra)
    return "".join(out).encode("utf-8")


def escape_text(text: str) -> str:
    """`text` safe as element content, XML 1.0 characters only."""
    if _plain(text):
        return text
    return _TEXT_SPECIAL.sub(_text_escape, _NOT_CHAR.sub("\ufffd", text))


def escape_attribute(text: str) -> str:
    """`text` safe inside a double-quoted attribute value, whitespace kept exactly."""
    if _plain(text) and '"' not in text:
        return text
    return _ATTR_SPECIAL.sub(_attribute_escape, _NOT_CHAR.sub("\ufffd", text))


def _plain(text: str) -> bool:
    """Whether `text` is printable ASCII with nothing to escape in element content: most
    values (names, numbers, codes), written as they are, without the two substitutions."""
    return text.isascii() and text.isprintable() and not ("&" in text or "<" in text or ">" in text)


def _text_escape(found: re.Match[str]) -> str:
    return _TEXT_ESCAPES[found.group(0)]


def _attribute_escape(found: re.Match[str]) -> str:
    return _ATTR_ESCAPES[found.group(0)]


def _element(name: str, value: Any, item: str, out: list[str], extra: dict[str, str]) -> None:
    check_element_name(name)
    attributes = extra
    children: list[tuple[str, Any]] = []
    text: Any = None
    if isinstance(value, dict):
        for key, child in value.items():
            key = str(key)
            if key.startswith("@"):
                check_attribute_name(key[1:])
                if attributes is extra:
                    attributes = dict(extra)  # the caller's stays as it is
                attributes[key[1:]] = text_of(child)
            elif key == "#text":
                text = child
            else:
                children.append((key, child))
    elif isinstance(value, list):
        children = [(item, entry) for entry in value]
    else:
        text = value
    attrs = (
        "".join(f' {key}="{escape_attribute(val)}"' for key, val in attributes.items())
        if attributes
        else ""
    )
    content = "" if text is None else escape_text(text_of(text))
    if not children and not content:
        out.append(f"<{name}{attrs}/>")
        return
    out.append(f"<{name}{attrs}>{content}")
    for child_name, child in children:
        _element(child_name, child, item, out, _NONE)
    out.append(f"</{name}>")


_NONE: dict[str, str] = {}  # a child's extra attributes: none (never written to)


def check_attribute_name(name: str) -> None:
    """Raise ValueError unless `name` (from a key `@name`) can be written as an attribute.
    The rule for a hook's field names when it is loaded, and for every key when it renders."""
    if name == "xmlns":
        raise ValueError("'@xmlns' would declare a namespace: set xml.namespace on the hook")
    _check_name(name, "attribute")


def check_element_name(name: str) -> None:
    """Raise ValueError unless `name` can be written as an element's name."""
    _check_name(name, "element")


def _check_name(name: str, what: str) -> None:
    if not is_xml_name(name):
        raise ValueError(f"{name!r} cannot be an XML {what} name")
