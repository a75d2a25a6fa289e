"""Numbers a hook would send other than as they are written, found where the text is at hand.

YAML reads `1.10` as the number 1.1, `01234` as 1234, `1e3` as 1000.0 and `0x1F` as 31, and
JSON reads `1.10` and `1e3` the same way; a header value or a field's constant written so went
out rewritten (`X-Version: 1.1`). Where a definition arrives as text (a hooks file, the console's
editor: YAML; the admin API's body: JSON) its numbers are read as `WrittenInt` / `WrittenFloat`,
which remember their text, and such a number is refused, saying how to quote it. A number whose
text is sent unchanged (`2`, `1.5`) is taken as it is, as is one that quoting would not change
(`01234` for an `integer` field is 1234 either way). A definition already read (the hook store's
records, which the service writes itself) has no text to compare, and is taken as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.nodes import ScalarNode

from dispatcher.hooks.credentials import Finding, items
from dispatcher.model.hook import header_text
from dispatcher.pipeline.render.convert import convert, text_of


class WrittenInt(int):
    """An integer and the text it was written as."""

    written: str


class WrittenFloat(float):
    """A float and the text it was written as."""

    written: str


def _int(text: str, value: int) -> WrittenInt:
    number = WrittenInt(value)
    number.written = text
    return number


def _float(text: str, value: float) -> WrittenFloat:
    number = WrittenFloat(value)
    number.written = text
    return number


class WrittenConstructor(RoundTripConstructor):
    """ruamel's round-trip constructor, its integers and floats remembering their text."""

    def construct_written_int(self, node: ScalarNode) -> WrittenInt:
        return _int(str(node.value), int(self.construct_yaml_int(node)))

    def construct_written_float(self, node: ScalarNode) -> WrittenFloat:
        return _float(str(node.value), float(self.construct_yaml_float(node)))


WrittenConstructor.add_constructor(
    "tag:yaml.org,2002:int", WrittenConstructor.construct_written_int
)
WrittenConstructor.add_constructor(
    "tag:yaml.org,2002:float", WrittenConstructor.construct_written_float
)


def read_json(text: str | bytes) -> Any:
    """The JSON document `text`, its numbers remembering their text; ValueError when it is no
    JSON."""
    return json.loads(text, parse_int=lambda t: _int(t, int(t)), parse_float=_json_float)


def _json_float(text: str) -> WrittenFloat:
    return _float(text, float(text))


def rewritten_numbers(raw: Any) -> Iterator[Finding]:
    """The header values and field constants of definition `raw` (as read by `read_json` or
    `WrittenConstructor`) that would be sent other than as written."""
    if not isinstance(raw, dict):
        return
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        written = _written(value)
        if written is not None and written != header_text(value):
            yield ("headers", name), _quote(header_text(value), written)
    for i, spec in items(raw.get("fields")):
        if not isinstance(spec, dict):
            continue
        for key in ("value", "default"):
            found = _field_problem(spec, spec.get(key))
            if found is not None:
                yield ("fields", i, key), found


def _field_problem(spec: dict[str, Any], value: Any) -> str | None:
    """Why the field constant `value` would be sent other than as written (None: it would not,
    or its text is not known)."""
    written = _written(value)
    if written is None:
        return None
    kind, fmt = spec.get("type"), spec.get("format")
    sent = _sent(value, kind, fmt)
    if sent is None or sent == written:
        return None
    quoted = _sent(written, kind, fmt)
    if quoted is None or quoted == sent:
        return None  # quoting would send the same (or nothing that converts): the number is meant
    return _quote(sent, written)


def _sent(value: Any, kind: Any, fmt: Any) -> str | None:
    """The text a field's constant is sent as, converted to its `type`; None when it does not
    convert (the type check says so)."""
    try:
        return text_of(convert(value, kind, fmt) if isinstance(kind, str) else value)
    except (ValueError, TypeError):
        return None


def _written(value: Any) -> str | None:
    """The text number `value` was written as; None for anything else, or a number of unknown
    text (a boolean is written `true` or `false` whatever its YAML spelling, on purpose)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    written = getattr(value, "written", None)
    return written if isinstance(written, str) else None


def _quote(sent: str, written: str) -> str:
    return f"is read as the number {sent}: quote it ({json.dumps(written)}) to send it as written"
