"""Load-time checks of `{placeholders}` in a hook's URL and header values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dispatcher.config.secrets import holds_reference, without_references
from dispatcher.hooks.credentials import Finding
from dispatcher.pipeline.render.mapping import parse_template
from dispatcher.pipeline.render.target import url_template


def placeholder_problems(raw: dict[str, Any]) -> Iterator[Finding]:
    """Placeholders outside a URL's path and query, unpaired braces, paths outside the event."""
    url = raw.get("url")
    if isinstance(url, str):
        try:
            url_template(without_references(url))  # a ${env:..} reference is no placeholder
        except ValueError as exc:
            yield ("url",), str(exc)
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if holds_reference(value):
            continue  # a secret's value, never a template; or a reference within one, refused
        if isinstance(value, str) and ("{" in value or "}" in value):
            try:
                parse_template(value)
            except ValueError as exc:
                yield ("headers", name), f"invalid template: {exc}"
