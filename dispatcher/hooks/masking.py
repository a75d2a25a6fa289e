"""What of a hook may be shown: one rule for every surface that shows a hook or its request.

A header or query parameter whose name looks like a credential is shown as `***`, as are a URL's
password, the hook's `api_key` (in a header or the query, whatever its name) and every `Secret`:
whatever came from a secret reference (in auth, a header, a field's constant, the URL's path or
query) is shown masked, while the request carries its value.
An `authorization` value keeps its scheme (`Basic ***`), so a reader sees which credential went.
A text from elsewhere (a library's error message) is shown with every URL in it masked by the
same rule and every secret value of the hook, in any usual encoding, replaced by `***`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from dispatcher.config.secrets import MASK, Secret, holds_reference, without_references
from dispatcher.model.auth import SECRET_AUTH_KEYS
from dispatcher.model.hook import Hook

SENSITIVE = re.compile(r"auth|token|key|secret|pass|cookie|signature|session", re.IGNORECASE)
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_CHARS = _LETTERS | frozenset("0123456789+.-")
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
    query = _masked_query(parts.query, set(secret_params)) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _masked_query(query: str, named: set[str]) -> str:
    """`query` with the value of each credential-like or `named` parameter masked and every
    other piece as written: shown as sent, and, sent back from an editor, saved as it was (read
    and encoded again, a `+` would turn into a space, `flag` into `flag=`)."""
    pieces = []
    for piece in query.split("&"):
        name = piece.partition("=")[0]
        decoded = unquote_plus(name)
        pieces.append(f"{name}={MASK}" if decoded in named or looks_sensitive(decoded) else piece)
    return "&".join(pieces)


def mask_urls(text: str, secret_params: Iterable[str] = ()) -> str:
    """`text` with each URL in it (`URL_IN_TEXT`) masked by `mask_url`.

    `URL_IN_TEXT.sub` would try the pattern at every letter of the text, reading each word to
    its end to look for a `://` after it: 23 µs over 1 KiB of JSON with one URL in it, on the
    way of every attempt whose answer holds one. A URL holds `://`, and its scheme is the run of
    scheme characters just before it (`:` is not one), from the run's first letter on. So the
    pattern is tried only there, at each `://`, from the end of the last URL found: the same
    URLs as the pattern's own scan finds, found in order."""
    pieces: list[str] = []
    done = 0  # the text before this is in `pieces`
    colon = text.find("://")
    while colon != -1:
        start = colon
        while start > done and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < colon and text[start] not in _LETTERS:
            start += 1
        found = URL_IN_TEXT.match(text, start) if start < colon else None
        if found is None:  # no scheme before it, or nothing after it
            colon = text.find("://", colon + 1)
            continue
        pieces += (text[done:start], mask_url(found.group(0), secret_params))
        done = found.end()
        colon = text.find("://", done)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def mask_header(name: str, value: str, secret_names: Iterable[str] = ()) -> str:
    """The header's value as it may be shown."""
    lowered = name.lower()
    if lowered in {"authorization", "proxy-authorization"} and " " in value.strip():
        return f"{value.strip().split(' ', 1)[0]} {MASK}"
    if looks_sensitive(name) or lowered in {n.lower() for n in secret_names}:
        return MASK
    return value


def mask_value(value: Any) -> Any:
    """A setting as it may be shown: a `Secret` masked; in a list, each as `numbered_mask`."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, list):
        return [numbered_mask(i) if isinstance(v, Secret) else v for i, v in enumerate(value)]
    return value


def api_key_names(hook: Hook) -> tuple[frozenset[str], frozenset[str]]:
    """The header names and query parameters that carry a secret of the hook: its `api_key`,
    and those whose value came from a secret reference."""
    headers = {name for name, value in hook.headers if isinstance(value, Secret)}
    params = {name for name, value in parse_qsl(urlsplit(hook.url).query) if holds_reference(value)}
    if hook.auth.type == "api_key":
        name = hook.auth.get("name", "")
        name = name.reveal() if isinstance(name, Secret) else str(name)
        (params if hook.auth.get("in", "header") == "query" else headers).add(name)
    return frozenset(headers), frozenset(params)


def shown_url(hook: Hook) -> str:
    """The hook's URL as it may be shown: references and credential-like values masked."""
    return mask_url(without_references(hook.url), api_key_names(hook)[1])


def shown_header(name: str, value: str | Secret) -> str:
    """A header of the hook's definition as it may be shown."""
    return MASK if isinstance(value, Secret) else mask_header(name, value)


def secret_values(hook: Hook) -> Iterator[str]:
    """Every secret value the hook holds, revealed: for finding them in texts, never for showing."""
    for _name, value in hook.auth.settings:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Secret):
                yield item.reveal()
    if hook.encryption is not None:
        for key in hook.encryption.keys:
            yield key.key.reveal()
    found = [value for _, value in hook.headers] + [spec.value for spec in hook.fields]
    for value in [*found, *hook.url_secrets]:
        if isinstance(value, Secret):
            yield value.reveal()


def mask_body(body: bytes, hook: Hook) -> bytes:
    """A rendered body as it may be shown: secret values (a field's constant from a reference)
    replaced by `***`."""
    for value in secret_values(hook):
        for form in _forms(value):
            if len(form) >= MIN_SECRET_CHARS:
                body = body.replace(form.encode("utf-8", "surrogatepass"), MASK.encode())
    return body


def mask_text(text: str, hook: Hook) -> str:
    """`text` as it may be shown: each URL in it masked as the hook's URL is, then each secret
    value of the hook (as written, URL-encoded or base64) replaced by `***`."""
    return TextMask(hook)(text)


class TextMask:
    """`mask_text` for one hook, its secret values' forms found once: for texts masked on every
    attempt (the attempts topic's response excerpts), where finding them each time would cost."""

    __slots__ = ("_forms", "_params")

    def __init__(self, hook: Hook) -> None:
        self._params = api_key_names(hook)[1]
        found = {form for value in secret_values(hook) for form in _forms(value)}
        # longest first: a form that contains another is replaced whole
        self._forms = sorted(
            (f for f in found if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        if "://" in text:
            text = mask_urls(text, self._params)
        for form in self._forms:
            if form in text:
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


def mask_definition(raw: dict[str, Any]) -> dict[str, Any]:
    """A hook definition as written (store or file) with its secrets masked: auth credentials
    (in a list, numbered), encryption keys, credential-like headers and the URL's password, key
    parameters and secret references. What the
    console's editor shows; `dispatcher.hooks.unmasking.keep_masked` undoes it on the way back."""
    shown: dict[str, Any] = dict(raw)
    if isinstance(raw.get("url"), str):
        given = raw.get("auth")
        key = given if isinstance(given, dict) else {}
        in_query = key.get("type") == "api_key" and key.get("in") == "query"
        secret_params = [str(key.get("name"))] if in_query else []
        # secret references masked, as the API shows them
        shown["url"] = mask_url(without_references(raw["url"]), secret_params)
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


def numbered_mask(position: int) -> str:
    """How entry `position` (0 first) of a list of secrets is shown: `***1` for the first, so
    each masked entry names the stored one it stands for (`keep_masked` restores by it)."""
    return f"{MASK}{position + 1}"


def _masked(value: Any) -> Any:
    return [numbered_mask(i) for i in range(len(value))] if isinstance(value, list) else MASK
