"""Checks on a hook's `fields` and body format that a JSON Schema cannot express: one source
each, paths and templates that parse, constants of their `type`, and names the format can write
(a dot nests in json and xml, and xml has its own rules for names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dispatcher.config.secrets import is_reference
from dispatcher.hooks.credentials import Finding, items
from dispatcher.pipeline.render.convert import convert
from dispatcher.pipeline.render.formats import nest
from dispatcher.pipeline.render.mapping import event_path, parse_template
from dispatcher.pipeline.render.xml import check_attribute_name, check_element_name, is_xml_name

SOURCES = ("from", "value", "template")


def field_problems(raw: dict[str, Any]) -> Iterator[Finding]:
    fields = [(i, f) for i, f in items(raw.get("fields")) if isinstance(f, dict)]
    for i, spec in fields:
        given = [key for key in SOURCES if key in spec]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            yield ("fields", i), f"give exactly one of from, value or template (found {what})"
        yield from _field(i, spec)
    if raw.get("format", "json") in ("json", "xml"):
        names = [(spec["name"], None) for _, spec in fields if isinstance(spec.get("name"), str)]
        try:
            nest(names)
        except ValueError as exc:
            yield ("fields",), f"field names clash: {exc}"


def _field(i: int, spec: dict[str, Any]) -> Iterator[Finding]:
    source, template, kind = spec.get("from"), spec.get("template"), spec.get("type")
    if isinstance(source, str):
        try:
            event_path(source)
        except ValueError as exc:
            yield ("fields", i, "from"), f"invalid path: {exc}"
    if isinstance(template, str):
        try:
            parse_template(template)
        except ValueError as exc:
            yield ("fields", i, "template"), f"invalid template: {exc}"
    if "format" in spec and kind not in ("datetime", "decimal"):
        yield ("fields", i, "format"), "format applies only to types datetime and decimal"
    elif kind == "decimal" and isinstance(spec.get("format"), str):
        try:
            convert(0, kind, spec["format"])
        except ValueError as exc:
            yield ("fields", i, "format"), str(exc)
    if not isinstance(kind, str):
        return
    for key in ("value", "default"):
        if key == "value" and is_reference(spec.get(key)):
            continue  # its value is known where it renders, and checked there (never shown)
        if spec.get(key) is not None:
            try:
                convert(spec[key], kind, spec.get("format"))
            except ValueError as exc:
                yield ("fields", i, key), f"is not a valid {kind}: {exc}"


def format_problems(raw: dict[str, Any]) -> Iterator[Finding]:
    fmt = raw.get("format", "json")
    csv, xml = raw.get("csv"), raw.get("xml")
    if isinstance(csv, dict) and csv.get("delimiter") in ('"', "\r", "\n"):
        yield ("csv", "delimiter"), "cannot be a quote or a line break"
    if fmt != "csv" and csv is not None:
        yield ("csv",), "csv settings given but format is not csv"
    if fmt != "xml" and xml is not None:
        yield ("xml",), "xml settings given but format is not xml"
    if isinstance(xml, dict):
        for key in ("root", "item"):
            name = xml.get(key)
            if isinstance(name, str) and not is_xml_name(name):
                yield ("xml", key), f"{name!r} is not an XML element name"
    named = _NAME_CHECKS.get(fmt) if isinstance(fmt, str) else None
    if named is not None:
        for i, spec in items(raw.get("fields")):
            name = spec.get("name") if isinstance(spec, dict) else None
            problem = named(name) if isinstance(name, str) else None
            if problem:
                yield ("fields", i, "name"), problem


EMPTY_PART = "a dot nests a key in the one before it, so no part of a dotted name may be empty"


def _json_field_name(name: str) -> str | None:
    """Why the field `name` cannot be written as nested keys (`customer..name` or `total.`
    would nest under a key ""); None when it can."""
    return EMPTY_PART if "." in name and "" in name.split(".") else None


def _xml_field_name(name: str) -> str | None:
    """Why the field `name` (dotted: nested elements, a last `@name` an attribute) cannot be
    written, by the XML encoder's own rules; None when it can."""
    *parents, leaf = name.split(".")
    try:
        for part in parents:
            check_element_name(part)
        if leaf.startswith("@"):
            check_attribute_name(leaf[1:])
        else:
            check_element_name(leaf)
    except ValueError as exc:
        return str(exc)
    return None


# the formats whose field names nest (a dot): how each one's names are checked
_NAME_CHECKS = {"json": _json_field_name, "xml": _xml_field_name}
