"""Field mapping: the exact keys a third party listens to, each valued from the event. Pure.

A field takes its value from exactly one of `from` (a path into the event), `value` (a
constant) or `template` (text with `{path}` placeholders; `{{` and `}}` are literal braces).
Templates are substituted, never evaluated: braces inside event data are inert text.
A value that is missing or null becomes the field's `default`; failing that, a `required`
field fails the render and any other field is null (empty in csv, xml and form).
A template with a placeholder that is missing or null is a missing value too when the field
has a `default` (the default is written instead); without one, the placeholder is written as
empty text unless the field is `required`. A constant from a secret reference is converted to
the field's `type` here, where its value is known (not when the hook is loaded), and a value
that does not convert fails the render without being quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from dispatcher.config.secrets import Secret
from dispatcher.errors import RenderError
from dispatcher.model.hook import FieldSpec
from dispatcher.pipeline.render.convert import convert, text_of
from dispatcher.pipeline.render.paths import MISSING, Path, format_path, lookup, parse_path

Template = tuple[str | Path, ...]
EVENT_ROOTS = frozenset(
    {
        "id",
        "type",
        "source",
        "specversion",
        "time",
        "subject",
        "datacontenttype",
        "data",
        "tenant",
        "extensions",  # the producer's own extension attributes: extensions.region
    }
)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@lru_cache(maxsize=4096)
def event_path(text: str) -> Path:
    """The parsed `from` path or placeholder; ValueError unless it starts at an event attribute."""
    path = parse_path(text)
    if not path:
        raise ValueError("the path is empty")
    if isinstance(path[0], int):
        raise ValueError("a path cannot start with an index: an event is an object")
    if path[0] not in EVENT_ROOTS:
        roots = ", ".join(sorted(EVENT_ROOTS))
        raise ValueError(
            f"{path[0]!r} is not part of an event (paths start with one of {roots};"
            f" an extension attribute is {_as_extension(path)})"
        )
    return path


def _as_extension(path: Path) -> str:
    """Where the extension attribute a wrong root may mean is: `region` and `extension.region`
    are both `extensions.region`."""
    if path[0] == "extension" and len(path) > 1 and isinstance(path[1], str):
        return format_path(("extensions", *path[1:]))
    return format_path(("extensions", path[0]))


@lru_cache(maxsize=1024)
def parse_template(text: str) -> Template:
    """The literal texts and placeholder paths of `text`; ValueError when braces do not pair."""
    parts: list[str | Path] = []
    position = 0
    literal = ""
    for match in _PLACEHOLDER.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
            continue
        if match.group(1) is None:
            raise ValueError(
                f"unpaired {token!r} at position {match.start() + 1} (write {token * 2})"
            )
        try:
            path = event_path(match.group(1).strip())
        except ValueError as exc:
            raise ValueError(f"placeholder {{{match.group(1)}}}: {exc}") from None
        if literal:
            parts.append(literal)
        parts.append(path)
        literal = ""
    literal += text[position:]
    if literal:
        parts.append(literal)
    return tuple(parts)


def map_fields(fields: Sequence[FieldSpec], event: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (name, value) pairs of the body, in the order the fields are written."""
    return [(spec.name, field_value(spec, event)) for spec in fields]


def field_value(spec: FieldSpec, event: Mapping[str, Any]) -> Any:
    """The value of one field for `event`; raise `RenderError` naming the field."""
    hidden = False  # a secret's value: never quoted in an error
    try:
        if spec.source is not None:
            raw = lookup(event, event_path(spec.source))
            wanted = spec.source
        elif spec.template is not None:
            raw = _filled(spec.template, event, spec)
            wanted = "its template"  # not reached when required: _fill names the placeholder
        else:
            raw, wanted = spec.value, "its value"
            if isinstance(raw, Secret):  # a constant from a secret reference
                raw, hidden = raw.reveal(), True
    except ValueError as exc:
        raise RenderError(f"field {spec.name!r}: {exc}") from None
    if raw is MISSING or raw is None:
        if spec.default is not None:
            raw, hidden = spec.default, False
        elif spec.required:
            raise RenderError(f"field {spec.name!r} is required but {wanted} is missing")
        else:
            return None
    try:
        return convert(raw, spec.type, spec.format)
    except ValueError as exc:
        if hidden:
            # the conversion's reason quotes the value, or a clipped or normalised piece of it
            # that no masking would find: a secret's value is never shown, not even in part
            raise RenderError(
                f"field {spec.name!r}: cannot convert to {spec.type}: the value of its secret"
                " reference does not convert (a secret's value is never shown)"
            ) from None
        raise RenderError(f"field {spec.name!r}: cannot convert to {spec.type}: {exc}") from None


def _filled(text: str, event: Mapping[str, Any], spec: FieldSpec) -> Any:
    """The field's template filled from `event`; `MISSING` when the field has a `default` and a
    placeholder is missing or null, so that the default stands for it (rather than text with a
    hole, or a required field failing although it has a default)."""
    template = parse_template(text)
    if spec.default is not None and any(
        _absent(lookup(event, part)) for part in template if not isinstance(part, str)
    ):
        return MISSING
    return fill(template, event, required=spec.required)


def _absent(value: Any) -> bool:
    return value is MISSING or value is None


def fill(
    template: Template,
    event: Mapping[str, Any],
    *,
    required: bool = True,
    encode: Callable[[str], str] = str,
) -> str:
    """`template` with its placeholders filled from `event`, each value's text through `encode`
    (a URL's percent-encoding, a header's check). ValueError naming the placeholder when a value
    is missing (and `required`) or `encode` refuses it; a missing optional value is empty."""
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        value = lookup(event, part)
        if value is MISSING or value is None:
            if required:
                raise ValueError(f"placeholder {{{format_path(part)}}} is missing")
            value = ""
        try:
            out.append(encode(text_of(value)))
        except ValueError as exc:  # UnicodeEncodeError is one
            raise ValueError(f"placeholder {{{format_path(part)}}}: {exc}") from None
    return "".join(out)
