"""The forms a secret takes in a text, for the tests that search what the dispatcher wrote (its
records, logs, metrics, answers) for a leak.

Written here, not taken from `dispatcher.hooks.masking`: a test that borrowed the masker's own
list of forms would miss whatever the masker misses.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus


def secret_forms(label: str, value: str) -> dict[str, str]:
    """Each usual form of `value`, by a label that starts with `label`: as is, base64 and
    base64url (without padding), form-encoded and percent-encoded. Any found is a leak."""
    raw = value.encode()
    return {
        label: value,
        f"{label}, base64": base64.b64encode(raw).decode().rstrip("="),
        f"{label}, base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        f"{label}, url-encoded": quote_plus(value),
        f"{label}, percent-encoded": quote(value, safe=""),
    }
