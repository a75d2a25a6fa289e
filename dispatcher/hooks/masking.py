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
from dispatcher.model.hook import SECRET_AUTH_KEYS, Hook

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


def mask_definition(raw: dict[str, Any]) -> dict[str, Any]:
    """A hook definition as written (store or file) with its secrets masked: auth credentials,
    encryption keys, credential-like headers and the URL's password and key parameters. What the
    console's editor shows; `keep_masked` undoes it on the way back."""
    shown: dict[str, Any] = dict(raw)
    if isinstance(raw.get("url"), str):
        given = raw.get("auth")
        key = given if isinstance(given, dict) else {}
        in_query = key.get("type") == "api_key" and key.get("in") == "query"
        shown["url"] = mask_url(raw["url"], [str(key.get("name"))] if in_query else [])
    if isinstance(raw.get("headers"), dict):
        shown["headers"] = {k: mask_header(str(k), str(v)) for k, v in raw["headers"].items()}
    auth = raw.get("auth")
    if isinstance(auth, dict):
        secret = SECRET_AUTH_KEYS.get(str(auth.get("type")), ())
        shown["auth"] = {k: _masked(v) if k in secret else v for k, v in auth.items()}
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        masked = dict(encryption)
        if "key" in masked:
            masked["key"] = MASK
        if isinstance(masked.get("keys"), list):
            masked["keys"] = [
                {**k, "key": MASK} if isinstance(k, dict) and "key" in k else k
                for k in masked["keys"]
            ]
        shown["encryption"] = masked
    return shown


def keep_masked(new: Any, old: Any) -> Any:
    """`new` with every masked value that came back unchanged replaced by `old`'s value at the
    same place, so saving a definition shown masked never overwrites a secret with the mask."""
    if isinstance(new, str) and MASK in new and isinstance(old, str):
        if new == MASK or new == mask_url(old) or new == mask_header("authorization", old):
            return old
        return new
    if isinstance(new, dict):
        before = old if isinstance(old, dict) else {}
        return {k: keep_masked(v, before.get(k)) for k, v in new.items()}
    if isinstance(new, list):
        before_list = old if isinstance(old, list) else []
        return [
            keep_masked(v, before_list[i] if i < len(before_list) else None)
            for i, v in enumerate(new)
        ]
    return new


def _masked(value: Any) -> Any:
    return [MASK for _ in value] if isinstance(value, list) else MASK
