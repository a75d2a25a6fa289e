"""Check a response body against a hook's `expect` entries and pick its `capture` values.

(Placeholder: the full json | xml | text checks are being built.)
"""

from __future__ import annotations

from typing import Any

from dispatcher.hooks.model import ResponseSpec


def check_body(spec: ResponseSpec, body: bytes) -> tuple[list[str], dict[str, Any]]:
    """The failed expectations (as messages) and the captured values for `body`."""
    return [], {}
