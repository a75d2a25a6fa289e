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
from dispatcher.pipeline.render.target import request_target

IDEMPOTENCY_HEADER = "webhook-id"
ACCEPT_ANY = ("accept", "*/*")  # unless the hook asks for a media type of its own
# the codings the response reader undoes (http/inflate.py), under its size cap
ACCEPT_ENCODING = ("accept-encoding", "gzip, deflate")


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
    url, headers = request_target(hook, event)
    if headers is hook.headers:  # no placeholder: built once per hook and media type
        head = _static_headers(headers, body.media_type)
    else:
        head = _with_ours(headers, body.media_type)
    target = _checked_url(url) if url is hook.url else _check_url(url)  # drawn from the event
    return Request(hook.method, target, (*head, (IDEMPOTENCY_HEADER, key)), body.content)


@lru_cache(maxsize=1024)
def _static_headers(
    headers: tuple[tuple[str, str], ...], media_type: str
) -> tuple[tuple[str, str], ...]:
    """The headers every request of a hook carries, built once per hook and media type."""
    return _with_ours(headers, media_type)


def _with_ours(
    headers: tuple[tuple[str, str], ...], media_type: str
) -> tuple[tuple[str, str], ...]:
    """The hook's `headers` and the dispatcher's own. A hook's `Accept` (a vendor that answers
    in the format it is asked for) stands instead of ours, `*/*`, and its `Content-Type` (a
    SOAP 1.1 endpoint's `text/xml`) instead of the format's, rather than beside them."""
    named = {name.lower() for name, _ in headers}
    accept = () if "accept" in named else (ACCEPT_ANY,)
    kind = () if "content-type" in named else (("content-type", media_type),)
    return (*headers, *kind, ("user-agent", USER_AGENT), *accept, ACCEPT_ENCODING)


def _check_url(url: str) -> str:
    """`url`, if a client can send it; else the pair's render error."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise RenderError(f"cannot build the request: {exc}") from None
    if not parsed.host:
        raise RenderError("cannot build the request: the URL names no host")
    return url


# A hook's own URL is checked once; one drawn from an event, every time.
_checked_url = lru_cache(maxsize=1024)(_check_url)
