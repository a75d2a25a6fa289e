"""Build the HTTP request one hook sends for one event: body, encryption, headers. Pure."""

from __future__ import annotations

from functools import lru_cache

import httpx

from dispatcher import USER_AGENT
from dispatcher.errors import RenderError
from dispatcher.model.body import Body
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request
from dispatcher.pipeline.render import render_body

IDEMPOTENCY_HEADER = "webhook-id"
# the codings the response reader undoes (http/inflate.py), under its size cap
ACCEPT = (("accept", "*/*"), ("accept-encoding", "gzip, deflate"))


def build_body(hook: Hook, event: Event) -> Body:
    """The rendered body, encrypted when the hook asks for it."""
    body = render_body(hook, event)
    if hook.encryption is not None:
        from dispatcher.security.encryption import encrypt_body

        body = encrypt_body(hook.encryption, body)
    return body


def build_request(hook: Hook, event: Event, key: str) -> Request:
    """The request for (event, hook), without credentials (the hook's own add them)."""
    body = build_body(hook, event)
    headers = (
        *_static_headers(hook.headers, body.media_type),
        (IDEMPOTENCY_HEADER, key),
    )
    return Request(hook.method, _checked_url(hook.url), headers, body.content)


@lru_cache(maxsize=1024)
def _static_headers(
    headers: tuple[tuple[str, str], ...], media_type: str
) -> tuple[tuple[str, str], ...]:
    """The headers every request of a hook carries, built once per hook and media type."""
    return (*headers, ("content-type", media_type), ("user-agent", USER_AGENT), *ACCEPT)


@lru_cache(maxsize=1024)
def _checked_url(url: str) -> str:
    """A hook's URL, checked once (a URL no client can send is the hook's render error)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise RenderError(f"cannot build the request: {exc}") from None
    if not parsed.host:
        raise RenderError("cannot build the request: the URL names no host")
    return url
