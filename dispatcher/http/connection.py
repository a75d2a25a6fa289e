"""One HTTP/1.1 connection of the delivery path: an asyncio protocol, httptools' parser.

A request is written whole (head and body in one write); the response is parsed as it arrives.
Interim answers (1xx but 101) are read past, as other clients do: the final answer is the one
returned. The body is decoded under the caller's cap as it comes (see `inflate`), and reading
stops at the cap: the connection is then closed, never pooled. A head that grows past its
limits (too many headers, a header too long) fails the exchange before it takes more memory.
The answer is what its framing says (RFC 9112): a trailer is not one of its headers, a reset
cuts a body that ends with the connection, and a connection that says more than its answer is
not reused. A connection is pooled only after an answer complete to its last byte, and never
after an exchange that did not return it.
"""

from __future__ import annotations

import asyncio
import select
from typing import cast

import httptools
import httpx

from dispatcher.http.exchange import Response, Undecodable
from dispatcher.http.inflate import Inflater

MAX_HEADERS = 128
MAX_FIELD = 8190  # bytes of one header name or value
MAX_HEAD = MAX_HEADERS * (2 * MAX_FIELD + 4)
_NO_BODY = (204, 304)  # answers that end at their head, whatever their headers say (RFC 9112 6.3)


class Stale(Exception):
    """Raised when a pooled connection was closed by the server before it answered a byte;
    `unread` when it was reset: the server closed it with the request unread, which its system
    then threw away (an orderly close may come after the server acted on the request)."""

    def __init__(self, unread: bool) -> None:
        super().__init__("closed before answering" + (", the request unread" if unread else ""))
        self.unread = unread


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
        # what aiohttp lets a response do too: folded header lines, bare LFs, odd header value
        # characters. A sender reads what receivers answer; the head's limits still hold.
        self._parser.set_dangerous_leniencies(
            lenient_headers=True,
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
        )
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
        except BaseException:
            # failed, or cancelled (a deadline, a revoke) even after the answer came: the
            # exchange's caller never gets the connection back, so it must not stay open
            self.reusable = False
            raise
        finally:
            self._waiter = None
            self.used = True
            if not self.reusable:  # cut short, cancelled, or the server keeps no connection
                self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, for an idle connection when its pool closes: a TLS connection's
        `close` sends close_notify and keeps the socket open until the server answers, which
        a server may never do, or the loop may not live to see (`hooks test --send`)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def readable(self) -> bool:
        """Whether bytes or the end of the connection arrived that the loop has not read yet:
        while the connection is idle, the server closing it (or talking out of turn)."""
        return bool(self._poll.poll(0))

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not registered as an asyncio.Transport subclass)
        self.transport = cast(asyncio.Transport, transport)
        self._poll = select.poll()
        self._poll.register(transport.get_extra_info("socket").fileno(), select.POLLIN)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        reason = f": {exc}" if exc is not None else ""
        if self._until_eof and exc is None:
            self._complete(keep=False)  # the body ends with the connection: this is its end
        elif not self._received and self.used:
            self._fail(Stale(unread=isinstance(exc, ConnectionResetError | BrokenPipeError)))
        elif self._in_body:
            self._fail(
                httpx.RemoteProtocolError(f"{self.host} closed the connection mid-body{reason}")
            )
        else:
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

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():
            # more after the answer, in the same read: a second answer to one request, or
            # the start of one. What it would say is not asked; the connection is not reused.
            raise _OutOfTurn

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._count > MAX_HEADERS:
            raise _Refused(f"too many headers (more than {MAX_HEADERS})")
        if len(name) > MAX_FIELD or len(value) > MAX_FIELD:
            raise _Refused(f"a header longer than {MAX_FIELD} bytes")
        if self._in_body:
            return  # a chunked body's trailer: not a header of the answer (RFC 9110 6.5.1)
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
        self._until_eof = (
            status not in _NO_BODY
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        )
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
        if self._size >= self._cap or (self._until_eof and self._inflater.finished):
            # the rest is not wanted, or only the connection's end would end the body: it goes
            self._complete(keep=False)

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


class _OutOfTurn(Exception):
    """Raised in a parser callback when an answer starts after this exchange's was complete."""


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
