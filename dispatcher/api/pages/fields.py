"""The editor's two ways to write a definition: its YAML text (secrets masked), and a form of
its common fields over the hook edited from (or a skeleton, for a new one)."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from dispatcher.hooks.masking import mask_definition
from dispatcher.hooks.shape import shape_problem

SKELETON = {"id": "", "events": [], "url": "https://", "method": "POST", "format": "json"}
FORMATS = ("json", "csv", "xml", "form")
METHODS = ("POST", "PUT", "PATCH")
CHOSEN_BY_DEFAULT: dict[str, Any] = {"method": "POST", "format": "json", "enabled": True}
FORM_FIELDS = ("id", "events", "url", "method", "format", "timeout", "enabled")


def yaml_text(definition: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = YAML(typ="rt", pure=True)
    writer.default_flow_style = None
    writer.dump(definition, out)
    return out.getvalue()


def shown_yaml(definition: dict[str, Any] | None) -> str:
    return "" if definition is None else yaml_text(mask_definition(definition))


def posted_text(form: dict[str, str], previous: dict[str, Any] | None) -> str:
    """The definition a form of the editor posted: its YAML, or the hook edited from
    (`previous`, masked) with the common fields of the form."""
    if form.get("mode") != "fields":
        return form.get("yaml", "")
    return yaml_text(with_fields(mask_definition(previous) if previous else dict(SKELETON), form))


def with_fields(definition: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """`definition` with the common fields of the form. A choice the form always sends (method,
    format, enabled) is written only when the definition has it or it is not the default: a
    definition that left it out keeps it out, and the review shows only what was changed."""
    changed = dict(definition)
    if form.get("id"):
        changed["id"] = form["id"].strip()
    changed["events"] = [e.strip() for e in form.get("events", "").split(",") if e.strip()]
    for name in ("url", "method", "format", "timeout"):
        value = form.get(name, "").strip()
        if value and (name in definition or value != CHOSEN_BY_DEFAULT.get(name)):
            changed[name] = value
        elif name == "timeout":
            changed.pop(name, None)  # an empty timeout: the default
    enabled = form.get("enabled") == "on"
    if "enabled" in definition or enabled is not CHOSEN_BY_DEFAULT["enabled"]:
        changed["enabled"] = enabled
    return changed


def loose(text: str) -> dict[str, Any]:
    """Whatever of `text` reads as a mapping, for the form beside a definition with problems;
    nothing of one too deep or, its aliases expanded, too large to check (`shape`): showing a
    field of it would expand it."""
    try:
        loaded = YAML(typ="safe", pure=True).load(text)
    except Exception:
        return {}
    if not isinstance(loaded, dict) or shape_problem(loaded, len(text)) is not None:
        return {}
    return loaded
