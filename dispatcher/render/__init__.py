"""Render a hook's request body from an event: field mapping, then the format's encoder."""

from __future__ import annotations

import json
from dataclasses import dataclass

from dispatcher.events import Event
from dispatcher.hooks.model import Hook


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered request body and its media type."""

    content: bytes
    media_type: str


def render_body(hook: Hook, event: Event) -> Body:
    """The body `hook` sends for `event`; raises `RenderError` (placeholder: JSON of data)."""
    return Body(json.dumps(event.data, separators=(",", ":")).encode(), "application/json")
