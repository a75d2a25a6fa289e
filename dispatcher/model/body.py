"""A rendered request body: what the render stage makes and encryption transforms."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered request body and its media type."""

    content: bytes
    media_type: str
