"""What of a hook may be shown: one rule for every surface that shows a hook or its request.

A header or query parameter whose name looks like a credential is shown as `***`, as are a URL's
password, the hook's `api_key` (in a header or the query, whatever its name) and every `Secret`.
An `authorization` value keeps its scheme (`Basic ***`), so a reader sees which credential went.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from dispatcher.config.secrets import MASK, Secret
from dispatcher.model.hook import Hook

SENSITIVE = re.compile(r"auth|token|key|secret|pass|cookie|signature|session", re.IGNORECASE)


def looks_sensitive(name: str) -> bool:
    """Whether a header or parameter called `name` may carry a credential."""
    return SENSITIVE.search(name) is not None


def mask_url(url: str, secret_params: Iterable[str] = ()) -> str:
    """`url` with its password, credential-like query values and `secret_params` masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        named = set(secret_params)
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(  # quote (%20), not quote_plus (+): shown as sent
            [(k, MASK if k in named or looks_sensitive(k) else v) for k, v in pairs],
            safe="*",
            quote_via=quote,
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_header(name: str, value: str, secret_names: Iterable[str] = ()) -> str:
    """The header's value as it may be shown."""
    lowered = name.lower()
    if lowered in {"authorization", "proxy-authorization"} and " " in value.strip():
        return f"{value.strip().split(' ', 1)[0]} {MASK}"
    if looks_sensitive(name) or lowered in {n.lower() for n in secret_names}:
        return MASK
    return value


def mask_value(value: Any) -> Any:
    """A setting as it may be shown: a `Secret` (or a list of them) masked."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value


def api_key_names(hook: Hook) -> tuple[frozenset[str], frozenset[str]]:
    """The header names and query parameters that carry the hook's `api_key`, if it has one."""
    if hook.auth.type != "api_key":
        return frozenset(), frozenset()
    name = str(hook.auth.get("name", ""))
    if hook.auth.get("in", "header") == "query":
        return frozenset(), frozenset({name})
    return frozenset({name}), frozenset()
