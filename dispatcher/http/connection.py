"""One HTTP/1.1 connection of the delivery path: an asyncio protocol, httptools' parser.

A request is written whole (head and body in one write); the response is parsed as it arrives.
Interim answers (1xx but 101) are read past, as other clients do: the final answer is the one
returned. The body is decoded under the caller's cap as it comes (see `inflate`), and reading
stops at the cap: the connection is then closed, never pooled. A head that grows past its
limits (too many headers, a header too long) fails the exchange before it takes more memory.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools
import httpx

from dispatcher.http.exchange import Response, Undecodable
from dispatcher.http.inflate import Inflater

MAX_HEADERS = 128
MAX_FIELD = 8190  # bytes of one header name or value
MAX_HEAD = MAX_HEADERS * (2 * MAX_FIELD + 4)


class Stale(Exception):
    """Raised when a pooled connection was closed by the server before it answered a byte."""


class Connection(asyncio.Protocol):
    """One connection, one exchange at a time. `reusable` after a complete keep-alive answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str) -> None:
        self.loop = loop
        self.host = host  # for error texts: the host name, never the URL
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.used = False  # has answered before (a pooled connection)
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._reset(0)

    def _reset(self, cap: int) -> None:
        self._cap = cap
        self._headers: dict[str, str] = {}
        self._count = 0
        self._head = 0  # bytes received before the head was complete
        self._in_body = False
        self._until_eof = False  # neither a length nor chunks: the body ends with the connection
        self._inflater: Inflater | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._status = 0
        self._received = False
        self._interim = False  # an interim (1xx) answer is being read, not the final one

    async def exchange(self, data: bytes, cap: int) -> Response:
        """Write `data` (a whole request) and read the answer, at most `cap` decoded bytes."""
        assert self.transport is not None
        self._reset(cap)
        self.reusable = False
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self._waiter = waiter
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self._waiter = None
            self.used = True
            if not self.reusable:  # cut short, cancelled, or the server keeps no connection
                self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not registered as an asyncio.Transport subclass)
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._until_eof:
            self._complete(keep=False)
        elif not self._received and self.used:
            self._fail(Stale())
        elif self._in_body:
            self._fail(httpx.RemoteProtocolError(f"{self.host} closed the connection mid-body"))
        else:
            reason = f": {exc}" if exc is not None else ""
            self._fail(httpx.ReadError(f"{self.host} closed the connection{reason}"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nothing was asked: a server talking out of turn is not reused
            return
        self._received = True
        if not self._in_body:
            self._head += len(data)
            if self._head > MAX_HEAD:
                self._fail(
                    httpx.RemoteProtocolError(
                        f"response head larger than {MAX_HEAD} bytes: too many headers,"
                        f" or a header longer than {MAX_FIELD} bytes"
                    )
                )
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            # an exception of a callback below comes out as the parser's, its context the cause
            failure = _failure_of(exc.__context__, self._status)
            self._fail(failure or httpx.RemoteProtocolError(f"malformed response: {exc}"))

    # -- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._count > MAX_HEADERS:
            raise _Refused(f"too many headers (more than {MAX_HEADERS})")
        if len(name) > MAX_FIELD or len(value) > MAX_FIELD:
            raise _Refused(f"a header longer than {MAX_FIELD} bytes")
        self._headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # an interim answer (100 Continue, 103 Early Hints): the final one follows on this
            # connection. Its head counts toward the head's limits, so a flood of them ends.
            self._interim = True
            self._headers = {}
            return
        self._status = status
        self._in_body = True
        headers = self._headers
        self._until_eof = "content-length" not in headers and "transfer-encoding" not in headers
        try:
            self._inflater = Inflater(headers.get("content-encoding", ""))
        except httpx.DecodingError as exc:
            raise _Undecoded(str(exc)) from None

    def on_body(self, body: bytes) -> None:
        if self._waiter is None or self._waiter.done() or self._inflater is None:
            return
        try:
            chunk = self._inflater.feed(body, self._cap - self._size)
        except httpx.DecodingError as exc:
            raise _Undecoded(str(exc)) from None
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= self._cap or self._inflater.finished:
            self._complete(keep=False)  # the rest is not wanted: the connection goes

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._waiter is not None and not self._waiter.done():
            self._complete(keep=self._parser.should_keep_alive() and not self._until_eof)

    # -- ending an exchange --------------------------------------------------------------------

    def _complete(self, *, keep: bool) -> None:
        assert self._waiter is not None
        self.reusable = keep
        self._waiter.set_result(Response(self._status, self._headers, b"".join(self._chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


class _Refused(Exception):
    """Raised in a parser callback when the response head is past its limits."""


class _Undecoded(Exception):
    """Raised in a parser callback when the body cannot be decoded."""


def _failure_of(exc: BaseException | None, status: int) -> Exception | None:
    """The exchange's error for an exception a parser callback raised, if it is one of ours."""
    if isinstance(exc, _Refused):
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, _Undecoded):
        return Undecodable(status, f"DecodingError: {exc}")
    return None
