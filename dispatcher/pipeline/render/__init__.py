"""Render a hook's request body from an event: field mapping, then the format's encoder."""

from __future__ import annotations

from typing import Any

from dispatcher.errors import PayloadTooLarge, RenderError
from dispatcher.model.body import Body
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.render.formats import (
    CSV_TYPE,
    FORM_TYPE,
    JSON_TYPE,
    XML_TYPE,
    csv_body,
    csv_table,
    form_body,
    form_pairs,
    json_body,
    nest,
)
from dispatcher.pipeline.render.mapping import map_fields
from dispatcher.pipeline.render.xml import xml_body

MEDIA_TYPES = {"json": JSON_TYPE, "csv": CSV_TYPE, "xml": XML_TYPE, "form": FORM_TYPE}


def render_body(hook: Hook, event: Event) -> Body:
    """The body `hook` sends for `event`; raises `RenderError` or `PayloadTooLarge`."""
    try:
        content = _encode(hook, event)
    except (ValueError, UnicodeEncodeError) as exc:
        raise RenderError(f"hook {hook.id}: cannot write {hook.format}: {exc}") from None
    except RecursionError:  # the encoders recurse; decoding caps depth, other callers may not
        raise RenderError(
            f"hook {hook.id}: cannot write {hook.format}: data nests too deeply"
        ) from None
    if len(content) > hook.max_payload_bytes:
        raise PayloadTooLarge(
            f"hook {hook.id}: rendered body is {len(content)} bytes,"
            f" above max_payload_bytes {hook.max_payload_bytes}"
        )
    return Body(content, MEDIA_TYPES[hook.format])


def _encode(hook: Hook, event: Event) -> bytes:
    pairs: list[tuple[str, Any]] | None = None
    if hook.fields:
        try:
            pairs = map_fields(hook.fields, event.attributes())
        except RenderError as exc:
            raise RenderError(f"hook {hook.id}: {exc}") from None
    if hook.format == "json":
        return json_body(nest(pairs) if pairs is not None else event.data)
    if hook.format == "xml":
        document = nest(pairs) if pairs is not None else event.data
        return xml_body(hook.xml_root, document, item=hook.xml_item, namespace=hook.xml_namespace)
    if hook.format == "csv":
        header: list[str] | None
        rows: list[list[Any]]
        if pairs is not None:
            header, rows = [name for name, _ in pairs], [[value for _, value in pairs]]
        else:
            header, rows = csv_table(event.data)
        return csv_body(
            header if hook.csv_header else None,
            rows,
            hook.csv_delimiter,
            escape_formulas=hook.csv_escape_formulas,
        )
    if hook.format == "form":
        if pairs is None:
            return form_body(form_pairs(event.data))
        return form_body(pairs, {spec.name for spec in hook.fields if spec.required})
    raise RenderError(f"hook {hook.id}: unknown format {hook.format!r}")
