"""Bounded requests and safe responses, as pure ASGI middleware.

`Bounds` refuses a request head past `MAX_HEAD_BYTES` (431), a malformed or negative
Content-Length (400) and a body past the limit (413), counting chunked bodies as they arrive,
and cuts a request that takes too long (503): in JSON, or as the console's error page to a
browser asking for a console page (`wants_page`). A head still arriving is bounded by the server
too (h11's limit on an incomplete event, `dispatcher.api.server`).
`SecurityHeaders` puts a strict Content-Security-Policy (no inline script), X-Frame-Options,
Referrer-Policy and nosniff on every response. `Tracked` tells a middleware whether the
response began, so it answers an error only before (`problems.Failures` too).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
MAX_HEAD_BYTES = 16 * 1024
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


ErrorPage = Callable[[int, str], bytes]  # an error's status and message as an HTML page


def wants_page(path: str, accept: str) -> bool:
    """A console page asked for by a browser: it gets its errors as a page, not JSON."""
    return (
        not path.startswith(("/api/", "/static/")) and path != "/healthz" and "text/html" in accept
    )


class Tracked:
    """A `send` that notes when the response has begun: from then on, an error cannot be
    answered any more (its status and headers are gone)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class _TooLarge(Exception):
    """Raised inside `Bounds` when a body grows past the limit."""


class Bounds:
    """Refuses bad or oversized bodies and requests that run past `timeout` seconds."""

    def __init__(
        self, app: ASGIApp, max_body: int, timeout: float, page: ErrorPage | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout = timeout
        self.page = page  # None: every refusal in JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = next((v for k, v in scope["headers"] if k == b"accept"), b"").decode("latin-1")
        page = self.page if wants_page(scope["path"], accept) else None

        async def _error(send: Send, status: int, message: str) -> None:
            await _refuse(send, status, message, page)

        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head > MAX_HEAD_BYTES:
            await _error(send, 431, f"the request head may hold at most {MAX_HEAD_BYTES} bytes")
            return
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if not text.isdigit() or any(v != lengths[0] for v in lengths):
                await _error(send, 400, "Content-Length must be one whole number >= 0")
                return
            if int(text) > self.max_body:
                await _error(send, 413, f"the body may hold at most {self.max_body} bytes")
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        tracked = Tracked(send)
        try:
            await asyncio.wait_for(self.app(scope, counted, tracked), self.timeout)
        except _TooLarge:
            if not tracked.started:
                await _error(send, 413, f"the body may hold at most {self.max_body} bytes")
        except TimeoutError:
            if not tracked.started:
                await _error(send, 503, f"the request took longer than {self.timeout:g}s")


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _refuse(send: Send, status: int, message: str, page: ErrorPage | None) -> None:
    """Answer `status` saying `message`: as `page` when given, else as JSON; the connection
    closed after it (the rest of a refused body is never read)."""
    if page is not None:
        body, kind = page(status, message), b"text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
