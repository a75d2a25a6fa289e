"""How both of a transport's paths read where an answer ends and what belongs to it, against
raw loopback servers: keep-alive after answers with no body or a coded one, bytes that follow
an answer, a body cut by a reset, trailers, old-style heads, and a kept-alive connection that
the server closes as it is reused. The reference is what httpx and aiohttp do (RFC 9112)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from test_transport import (
    CAP,
    LOOPBACK_ONLY,
    VIA,
    StubResolver,
    guarded,
    no_stray_connections,
    raw_server,
    read_head,
)

from dispatcher.model.request import Request

__all__ = ["no_stray_connections"]  # autouse here too: every connection made is to loopback

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Answer = tuple[int, dict[str, str], bytes]
Post = Callable[[bytes], Awaitable[Answer]]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def posting(handler: Handler, via: str) -> AsyncIterator[tuple[Post, list[str]]]:
    """A raw server running `handler`, and `post(body)`: a POST of `body` to it through a
    guarded transport on path `via`, answering (status, headers by lower-case name, body);
    beside it, the addresses the transport connected to, one per connection."""
    transport, recorder = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
    async with raw_server(handler) as port:
        url = f"http://rx.test:{port}/"
        if via == "httpx":
            async with httpx.AsyncClient(transport=transport) as client:

                async def post_httpx(body: bytes) -> Answer:
                    response = await client.post(url, content=body)
                    headers = {name.lower(): value for name, value in response.headers.items()}
                    return response.status_code, headers, response.content

                yield post_httpx, recorder.hosts
            return

        async def post_wire(body: bytes) -> Answer:
            response = await transport.exchange(Request("POST", url, (), body), CAP)
            return response.status, dict(response.headers), response.body

        try:
            yield post_wire, recorder.hosts
        finally:
            await transport.aclose()


def answering(*answers: bytes) -> Handler:
    """A server writing `answers` in turn to the requests of a connection, the last repeating."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for turn in range(1_000):
            await read_head(reader)
            writer.write(answers[min(turn, len(answers) - 1)])
            await writer.drain()

    return handler


GZIPPED = gzip.compress(b'{"status":"ok"}')
DEFLATED = zlib.compress(b'{"status":"ok"}')
WITHOUT_A_BODY_OR_CODED = {
    "204 without a length": b"HTTP/1.1 204 No Content\r\n\r\n",
    "gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
    % (len(GZIPPED), GZIPPED),
    "gzip, chunked": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(GZIPPED), GZIPPED),
    "deflate": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s"
    % (len(DEFLATED), DEFLATED),
}


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("answer", list(WITHOUT_A_BODY_OR_CODED))
def test_answers_without_a_body_or_with_a_coded_one_keep_their_connection(
    answer: str, via: str
) -> None:
    """204 is the commonest answer of a webhook receiver, and the client asks for gzip: each
    used to cost a new connection (and TLS handshake) on the delivery path."""

    async def scenario() -> None:
        async with posting(answering(WITHOUT_A_BODY_OR_CODED[answer]), via) as (post, connections):
            for _ in range(3):
                status, _, body = await post(b"{}")
                assert (status, body) in ((204, b""), (200, b'{"status":"ok"}'))
        assert len(connections) == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    "extra",
    [
        b"HTTP/1.1 500 Oops\r\nX-Phantom: 1\r\nContent-Length: 0\r\n\r\n",  # a whole answer
        b"HTTP/1.1 500 Oops\r\nX-Phantom: 1\r\nContent-Length: 10\r\n\r\n",  # a head, no body
    ],
)
def test_bytes_after_an_answer_change_neither_it_nor_the_next_one(extra: bytes, via: str) -> None:
    """A server writing more than its answer, in the same read: the answer stands as it came,
    and the next request gets its own (on the delivery path the extra used to be parsed on:
    its headers joined the answer's, and the next request got a made-up status 0)."""

    async def scenario() -> None:
        async with posting(answering(OK + extra, OK), via) as (post, connections):
            first, second = await post(b"{}"), await post(b"{}")
        assert (first[0], first[2], second[0], second[2]) == (200, b"ok", 200, b"ok")
        assert "x-phantom" not in first[1]
        assert len(connections) == 2  # the connection that talked out of turn is not reused

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_a_trailer_is_not_a_header_of_the_answer(via: str) -> None:
    """A chunked body's trailer comes after the body: taken for a header, its Retry-After
    would decide when a 503 is tried again (RFC 9110 6.5.1)."""
    trailed = (
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n"
        b"Retry-After: 3600\r\n\r\n"
    )

    async def scenario() -> None:
        async with posting(answering(trailed), via) as (post, _):
            status, headers, body = await post(b"{}")
        assert (status, body) == (503, b"no")
        assert "retry-after" not in headers

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    ("head", "note"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Note: one\r\n two\r\nContent-Length: 2\r\n\r\n", "one two"),
        (b"HTTP/1.1 200 OK\nX-Note: one\nContent-Length: 2\n\n", "one"),
    ],
    ids=["folded header", "bare LF"],
)
def test_old_style_heads_are_read_as_httpx_and_aiohttp_read_them(
    head: bytes, note: str, via: str
) -> None:
    """A folded header line is unfolded (RFC 9112 5.2: a user agent replaces it with a space);
    a bare LF ends a line. Both used to fail the delivery as a malformed answer."""

    async def scenario() -> None:
        async with posting(answering(head + b"ok"), via) as (post, _):
            status, headers, body = await post(b"{}")
        assert (status, headers["x-note"], body) == (200, note, b"ok")

    asyncio.run(scenario())


def reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with a reset, not an orderly close."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


def test_a_body_that_ends_with_the_connection_is_an_error_when_it_is_reset() -> None:
    """Neither a length nor chunks: the body ends with the connection. A reset is not its
    end but a cut (RFC 9112 8: an incomplete answer is recorded as incomplete), as httpx has
    it. (aiohttp, under the token requests' path, takes it for the end.)"""

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b'HTTP/1.1 200 OK\r\n\r\n{"status":"o')
        await writer.drain()
        reset(writer)

    async def scenario() -> None:
        async with posting(cut, "wire") as (post, _):
            with pytest.raises(httpx.TransportError):
                await post(b"{}")

    asyncio.run(scenario())


def kept_alive_then(
    second: Handler,
    bodies: list[bytes],
) -> Handler:
    """A connection's first request is answered keep-alive; `second` handles its next. Every
    request body read is kept in `bodies`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        bodies.append(b"")
        writer.write(OK)
        await writer.drain()
        await second(reader, writer)

    return handler


@pytest.mark.parametrize("via", VIA)
def test_a_post_the_server_read_and_left_unanswered_is_not_sent_again(via: str) -> None:
    """The server read the POST on a reused connection, then closed it without a word: it may
    have acted on it, so the request is not sent again at once (RFC 9112 9.3.1). The attempt
    fails; the delivery's retry, with its record and backoff, decides what follows."""
    bodies: list[bytes] = []

    async def read_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        bodies.append(b"read")
        writer.close()

    async def scenario() -> None:
        async with posting(kept_alive_then(read_then_close, bodies), via) as (post, _):
            await post(b"{}")
            with pytest.raises(httpx.TransportError):
                await post(b"{}")
        assert bodies.count(b"read") == 1

    asyncio.run(scenario())


def test_a_reused_connection_reset_with_the_request_unread_sends_it_again() -> None:
    """A reset before any answer: the server's system threw the request away unread (a server
    closing a connection as it is reused does this), so it is sent once more, on a new one."""
    bodies: list[bytes] = []

    async def reset_unread(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the request is there: the reset comes after it was written
        reset(writer)

    async def scenario() -> None:
        async with posting(kept_alive_then(reset_unread, bodies), "wire") as (post, connections):
            await post(b"{}")
            assert (await post(b"{}"))[0] == 200
        assert len(connections) == 2
        assert len(bodies) == 2

    asyncio.run(scenario())
