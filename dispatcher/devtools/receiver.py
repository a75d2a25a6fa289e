"""A local HTTP receiver that answers like a few third parties: for the demo, tests and benchmarks.

An asyncio HTTP/1.1 server with keep-alive, run in a background thread. Each path has a
`Behaviour` (status, body, delay, hang, fail the first N attempts of each webhook-id); every
request is recorded. It listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

MAX_BODY = 1 << 20
HOLD_AT_MOST = 120.0  # seconds a request is held for its `release`: a test that failed lets go


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the receiver answers on one path."""

    status: int = 200
    body: bytes = b'{"status":"ok"}'
    content_type: str = "application/json"
    delay: float = 0.0
    hang: bool = False
    fail_first: int = 0  # answer `fail_status` to the first N attempts of each webhook-id
    fail_status: int = 503
    headers: tuple[tuple[str, str], ...] = ()
    release: threading.Event | None = None  # answer only once it is set: a request held open


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class LoopbackServer:
    """An asyncio TCP server on loopback in a thread of its own; subclasses define `_serve`.

    Start with `start()` (returns the base URL), stop with `stop()`; or use as a context.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "server") -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self.url

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)  # one more turn: the closed transports release their sockets

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class Receiver(LoopbackServer):
    """Answers each path per its `Behaviour` and records every request."""

    def __init__(
        self, routes: dict[str, Behaviour] | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host, port, name="receiver")
        self.routes = dict(routes or {})
        self.default = Behaviour()
        self.requests: list[Received] = []
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.responder: Callable[[Received], Behaviour | None] | None = None
        self._lock = threading.Lock()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                behaviour = self._behaviour(request)
                if behaviour.hang:  # never answer; let go once the client gives up
                    await reader.read()
                    break
                if behaviour.delay:
                    await asyncio.sleep(behaviour.delay)
                if behaviour.release is not None:
                    await asyncio.to_thread(behaviour.release.wait, HOLD_AT_MOST)
                writer.write(_response(behaviour, self._status(request, behaviour)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _behaviour(self, request: Received) -> Behaviour:
        with self._lock:
            self.requests.append(request)
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return self.routes.get(request.path, self.default)

    def _status(self, request: Received, behaviour: Behaviour) -> int:
        if not behaviour.fail_first:
            return behaviour.status
        key = (request.path, request.headers.get("webhook-id", ""))
        with self._lock:
            self.attempts[key] += 1
            seen = self.attempts[key]
        return behaviour.fail_status if seen <= behaviour.fail_first else behaviour.status


async def read_request(reader: asyncio.StreamReader) -> Received | None:
    """The next HTTP/1.1 request on a connection (body up to MAX_BODY), or None at its end."""
    head = await read_head(reader)
    return None if head is None else await read_body(reader, head)


async def read_head(reader: asyncio.StreamReader) -> Received | None:
    """The method, path and headers of the next request (its body not read), or None at the
    connection's end."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Received(method, path, headers, b"")


async def read_body(reader: asyncio.StreamReader, head: Received) -> Received:
    """The request `head` began, with its body (up to MAX_BODY)."""
    length = min(int(head.headers.get("content-length", "0") or 0), MAX_BODY)
    body = await reader.readexactly(length) if length else b""
    return Received(head.method, head.path, head.headers, body, head.at)


def _response(behaviour: Behaviour, status: int) -> bytes:
    body = behaviour.body
    head = [
        f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}",
        f"content-type: {behaviour.content_type}",
        f"content-length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in behaviour.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
