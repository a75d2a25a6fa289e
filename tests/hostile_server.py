"""A raw-socket HTTP server on loopback that misbehaves on purpose, for hostile-response tests.

Each path has a `Script`: an async function given the request and a `Stream`, which writes
whatever bytes it likes (endless bodies, one byte at a time, broken encodings, floods of
headers). Every request is recorded, and so is how each connection ended, so a test can tell
that the client stopped reading. It listens on 127.0.0.1 only and runs in a thread of its own.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from dispatcher.devtools.receiver import LoopbackServer, Received, read_body, read_head

Request = Received  # one request as the server read it


@dataclass
class Stream:
    """The server's side of one response: counts what it wrote, notices a client that left."""

    path: str
    writer: asyncio.StreamWriter
    sent: int = 0
    keep_alive: bool = False
    client_left: bool = False
    ended_at: float | None = None

    async def write(self, data: bytes) -> None:
        """Write `data` and wait until the socket took it; raises once the client is gone."""
        self.writer.write(data)
        await self.writer.drain()
        self.sent += len(data)


Script = Callable[[Request, Stream], Awaitable[None]]


def head(status: int, headers: Iterable[tuple[str, str]] = (), reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(
    status: int = 200,
    body: bytes = b'{"status":"ok"}',
    headers: Iterable[tuple[str, str]] = (("content-type", "application/json"),),
) -> Script:
    """A well-formed answer (kept alive)."""
    extra = tuple(headers)

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(head(status, [*extra, ("content-length", str(len(body)))]) + body)
        stream.keep_alive = True

    return script


def huge_body(size: int, chunk: int = 1 << 16) -> Script:
    """A `size`-byte body announced by its Content-Length, written as fast as it is read."""
    block = b"x" * chunk

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(
            head(200, [("content-type", "text/plain"), ("content-length", str(size))])
        )
        left = size
        while left > 0:
            await stream.write(block[: min(left, chunk)])
            left -= chunk

    return script


def endless_chunked(chunk: int = 1 << 14) -> Script:
    """A chunked body that never ends."""
    piece = b"%x\r\n%s\r\n" % (chunk, b"y" * chunk)

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(
            head(200, [("content-type", "text/plain"), ("transfer-encoding", "chunked")])
        )
        while True:
            await stream.write(piece)

    return script


def slow_drip(interval: float, *, whole_response: bool = False) -> Script:
    """One byte every `interval` seconds, never finishing: every read gets something, so only
    a total deadline ends it. With `whole_response` even the status line comes byte by byte."""

    async def script(_request: Request, stream: Stream) -> None:
        response = head(200, [("content-type", "text/plain"), ("content-length", "1000000")])
        if not whole_response:
            await stream.write(response)
            response = b""
        position = 0
        while True:
            await stream.write(response[position : position + 1] or b".")
            position += 1
            await asyncio.sleep(interval)

    return script


def encoded(encoding: str, body: bytes, status: int = 200) -> Script:
    """`body` sent as it is under the given Content-Encoding (which it may well not match)."""
    return respond(
        status, body, [("content-type", "application/json"), ("content-encoding", encoding)]
    )


def header_flood(count: int = 10_000) -> Script:
    """A 200 whose head carries `count` headers."""
    flood = [(f"x-flood-{i}", "y" * 32) for i in range(count)]

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(head(200, [*flood, ("content-length", "2")]) + b"ok")

    return script


def one_huge_header(size: int = 1 << 20) -> Script:
    """A 200 with a single header line of `size` bytes."""

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(head(200, [("x-huge", "z" * size), ("content-length", "2")]) + b"ok")

    return script


GOOD = respond()
GZIP_GARBAGE = b"\x1f\x8b\x08\x00garbage, not deflate data at all" + bytes(range(256))
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<response><status>&lol9;</status></response>"
)


@functools.lru_cache(maxsize=4)
def gzip_bomb(expanded: int) -> bytes:
    """A gzip member of `expanded` zero bytes (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [
        compressor.compress(block[: min(len(block), expanded - done)])
        for done in range(0, expanded, len(block))
    ]
    return b"".join([*parts, compressor.flush()])


async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read a little of the request body, then reset the connection (RST, not FIN)."""
    await reader.read(1 << 14)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class HostileServer(LoopbackServer):
    """Answers each path with its script; records requests and whether the client hung up.

    A path in `resets` (matched without its query) is never answered: the connection is reset
    while the request body is still arriving."""

    def __init__(self, routes: dict[str, Script] | None = None) -> None:
        super().__init__(name="hostile")
        self.routes = dict(routes or {})
        self.resets: set[str] = set()
        self.default: Script = GOOD
        self._requests: list[Request] = []
        self._streams: list[Stream] = []
        self._lock = threading.Lock()

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def streams(self, path: str | None = None) -> list[Stream]:
        with self._lock:
            return [s for s in self._streams if path is None or s.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_head(reader)
                if request is None:
                    return
                if request.path.partition("?")[0] in self.resets:
                    with self._lock:
                        self._requests.append(request)
                    await reset_mid_body(reader, writer)
                    return
                request = await read_body(reader, request)
                stream = Stream(request.path, writer)
                with self._lock:
                    self._requests.append(request)
                    self._streams.append(stream)
                script = self.routes.get(request.path, self.default)
                try:
                    await script(request, stream)
                except (ConnectionError, OSError):
                    stream.client_left = True
                    return
                finally:
                    stream.ended_at = time.monotonic()
                if not stream.keep_alive:
                    return
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            return
        finally:
            writer.close()
