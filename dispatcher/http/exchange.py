"""One HTTP exchange as plain values: a `Request` in, a `Response` (status, headers, capped
body) out. The guarded transport does it on the HTTP/1.1 client of http/wire.py
(`GuardedTransport.exchange`);
`HttpxExchange` does it over any httpx transport, such as the `MockTransport` of unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from dispatcher.http.inflate import Inflater
from dispatcher.model.request import Request
from dispatcher.model.values import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Response:
    """What came back: the status, the headers (case-insensitive) and at most `cap` body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Undecodable(Exception):
    """Raised when a response body cannot be decoded from its Content-Encoding."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Exchange(Protocol):
    """Sends `request` and reads at most `cap` decoded body bytes; raises httpx's errors."""

    async def exchange(self, request: Request, cap: int) -> Response: ...

    async def aclose(self) -> None: ...


class HttpxExchange:
    """An exchange over an httpx transport: no redirects, no environment, no cookies kept."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            trust_env=False,
        )

    async def exchange(self, request: Request, cap: int) -> Response:
        outgoing = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.content
        )
        self._client.cookies.clear()  # each request is built whole: it never carries cookies
        response = await self._client.send(outgoing, stream=True)
        try:
            body = await _read_capped(response, cap)
        finally:
            await response.aclose()
        return Response(response.status_code, response.headers, body)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """At most `cap` bytes of the decoded body; the rest is never read, nor inflated."""
    if response.is_stream_consumed:  # read in full already (a mock transport's answer)
        return response.content[:cap]
    try:
        inflater = Inflater(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = inflater.feed(raw, cap - size)
            chunks.append(chunk)
            size += len(chunk)
            if size >= cap or inflater.finished:
                break
    except httpx.DecodingError as exc:
        raise Undecodable(response.status_code, f"{type(exc).__name__}: {exc}") from None
    return b"".join(chunks)
