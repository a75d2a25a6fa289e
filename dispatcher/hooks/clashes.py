"""Checks that no part of one hook definition is replaced, as it is sent, by something else
setting the same header or query parameter; as (path, message) pairs, naming the header or
parameter and never a value.

A request carries a header once. The dispatcher's own headers and the header an `auth` puts its
credential in (`Authorization`, or an API key's) would replace a hook's header of that name, or
go out beside it; an API key sent in the query replaces the URL's parameter of its name. Each
is refused at load, where the admin sees it, rather than sent otherwise than written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dispatcher.hooks.credentials import Finding
from dispatcher.security.auth import credential_header

# Headers every request already carries, set by the dispatcher: a hook's own would go out beside
# them, twice (and a receiver would check the signature against one `webhook-id` or the other).
# (`content-type` follows `format`, and a hook's own stands instead: `text/xml` for SOAP 1.1.)
DISPATCHER_HEADERS = frozenset(
    (
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-length",
        "transfer-encoding",
        "host",
        "user-agent",
        "accept-encoding",
    )
)


def clash_problems(raw: dict[str, Any]) -> Iterator[Finding]:
    """A header of the hook that the dispatcher or the hook's auth sets too; an auth that would
    replace one of the dispatcher's headers or one of the URL's query parameters."""
    given = raw.get("auth")
    auth: dict[str, Any] = given if isinstance(given, dict) else {}
    credential = _credential_header(auth)
    headers = raw.get("headers")
    for name in headers if isinstance(headers, dict) else ():
        lowered = str(name).strip().lower()
        if lowered in DISPATCHER_HEADERS:
            yield (
                ("headers", name),
                f"{name!r} is set by the dispatcher on every request; a hook cannot set it too",
            )
        elif lowered == "content-type" and raw.get("encryption"):
            yield (
                ("headers", name),
                "an encrypted body's Content-Type is its algorithm's, which the receiver reads"
                " to decrypt it: drop the header or the encryption",
            )
        elif lowered == credential:
            yield (
                ("headers", name),
                f"{name!r} is the header auth ({auth['type']}) sends its credential in, which"
                " would replace this value on every request: drop the header or the auth",
            )
    if credential in DISPATCHER_HEADERS | {"content-type"}:  # only an API key's name can be one
        yield (
            ("auth", "name"),
            f"{auth['name']!r} is set by the dispatcher on every request: the API key would"
            " replace it (send the key in a header of its own)",
        )
    yield from _query_clash(raw.get("url"), auth)


def _credential_header(auth: dict[str, Any]) -> str | None:
    """The header `auth` puts its credential in, as far as its settings can be read."""
    kind, name, where = auth.get("type"), auth.get("name"), auth.get("in")
    if not isinstance(kind, str):
        return None
    return credential_header(
        kind, name if isinstance(name, str) else None, where if isinstance(where, str) else None
    )


def _query_clash(url: Any, auth: dict[str, Any]) -> Iterator[Finding]:
    """An API key sent in the query replaces the URL's own parameter of its name."""
    name = auth.get("name")
    if auth.get("type") != "api_key" or auth.get("in") != "query" or not isinstance(name, str):
        return
    try:
        query = urlsplit(url).query if isinstance(url, str) else ""
    except ValueError:
        return  # not a URL: the URL's own finding
    if any(key == name for key, _ in parse_qsl(query, keep_blank_values=True)):
        yield (
            ("url",),
            f"its query has {name!r}, the parameter auth (api_key, in: query) sends the key in:"
            " the key would replace its value on every request (drop it from the URL)",
        )
