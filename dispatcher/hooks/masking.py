"""What of a hook may be shown: one rule for every surface that shows a hook or its request.

A header or query parameter whose name looks like a credential is shown as `***`, as are a URL's
password, the hook's `api_key` (in a header or the query, whatever its name) and every `Secret`.
An `authorization` value keeps its scheme (`Basic ***`), so a reader sees which credential went.
A text from elsewhere (a library's error message) is shown with every URL in it masked by the
same rule and every secret value of the hook, in any usual encoding, replaced by `***`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from dispatcher.config.secrets import MASK, Secret
from dispatcher.model.hook import Hook

SENSITIVE = re.compile(r"auth|token|key|secret|pass|cookie|signature|session", re.IGNORECASE)
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words; no real credential is that short


def looks_sensitive(name: str) -> bool:
    """Whether a header or parameter called `name` may carry a credential."""
    return SENSITIVE.search(name) is not None


def mask_url(url: str, secret_params: Iterable[str] = ()) -> str:
    """`url` with its password, credential-like query values and `secret_params` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: show none of it
        return "<url>"
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        named = set(secret_params)
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k in named or looks_sensitive(k) else v) for k, v in pairs], safe="*"
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


def secret_values(hook: Hook) -> Iterator[str]:
    """Every secret value the hook holds, revealed: for finding them in texts, never for showing."""
    for _name, value in hook.auth.settings:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Secret):
                yield item.reveal()
    if hook.encryption is not None:
        for key in hook.encryption.keys:
            yield key.key.reveal()


def mask_text(text: str, hook: Hook) -> str:
    """`text` as it may be shown: each URL in it masked as the hook's URL is, then each secret
    value of the hook (as written, URL-encoded or base64) replaced by `***`."""
    params = api_key_names(hook)[1]
    text = URL_IN_TEXT.sub(lambda found: mask_url(found.group(0), params), text)
    for value in secret_values(hook):
        for form in _forms(value):
            if len(form) >= MIN_SECRET_CHARS:
                text = text.replace(form, MASK)
    return text


def _forms(value: str) -> set[str]:
    raw = value.encode("utf-8", "surrogatepass")
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        quote(value),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
