"""The delivery path's HTTP/1.1 client: guarded, pinned connections in a bounded keep-alive pool.

Every new connection resolves its host through the shared cache, passes the destination guard
on every address, and connects to a vetted address itself, while TLS sends SNI and checks the
certificate against the host name. Nothing is taken from the environment (no proxies), nothing
follows a redirect, and a URL's userinfo becomes HTTP Basic credentials as other clients do.
A pooled connection the server closed before answering is replaced once by a new one.
Errors are httpx's exception classes, their text naming the host, never the URL.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import unquote

import httpx
from yarl import URL

from dispatcher.errors import BlockedDestination
from dispatcher.http.connection import Connection, Stale
from dispatcher.http.exchange import Response
from dispatcher.http.resolution import ResolutionCache
from dispatcher.model.request import Request
from dispatcher.security.guard import GuardPolicy, check_addresses

SCHEMES = frozenset({"http", "https"})
# written by the client from the request itself: never taken from a hook's headers
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_MAX_TARGETS = 1024
# sent again, once, when a reused connection closes before answering: idempotent methods, or
# any request the server reset unread (RFC 9112 9.3.1); else it is the delivery's retry's call
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# what a URL may hold as it stands in a request line (RFC 3986's characters, and %)
_AS_WRITTEN = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]  # (family, type, proto, name, address)
SocketFactory = Callable[[AddrInfo], socket.socket]
"""Makes the socket for one connection about to be made to the address it is given (a vetted
one): aiohttp's `socket_factory` signature, so one factory serves both of a transport's paths."""


def plain_socket(info: AddrInfo) -> socket.socket:
    """A new socket of the family, type and protocol of `info`."""
    family, kind, proto, _, _ = info
    return socket.socket(family, kind, proto)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL sends: its origin, and the request line's target and Host header."""

    scheme: str
    host: str
    port: int
    literal: bool  # the host is an IP address
    path: str
    host_header: str
    authorization: str | None  # from the URL's userinfo

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_target(url: str) -> Target:
    """The target of `url`; `BlockedDestination` for a scheme other than http(s), no host, or
    a URL that cannot be written (a control character).

    A URL with characters a request line cannot carry as they are (a space, a letter beyond
    ASCII in its host, path or query) is written as httpx writes it: the host in IDNA, the
    rest percent-encoded as UTF-8. Other URLs are taken as written, already encoded."""
    if _AS_WRITTEN.fullmatch(url) is None:
        url = _encoded(url)
    parsed = URL(url, encoded=True)
    if parsed.scheme not in SCHEMES:
        raise BlockedDestination(f"scheme {parsed.scheme!r} refused: only http and https")
    host = parsed.raw_host or ""
    if not host:
        raise BlockedDestination("the URL names no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = ":" in host or host.replace(".", "").isdigit()
    shown = f"[{host}]" if ":" in host else host
    authorization = None
    if parsed.raw_user is not None:
        pair = f"{unquote(parsed.raw_user)}:{unquote(parsed.raw_password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Target(
        scheme=parsed.scheme,
        host=host,
        port=port,
        literal=literal,
        path=parsed.raw_path_qs or "/",
        host_header=shown if parsed.is_default_port() else f"{shown}:{port}",
        authorization=authorization,
    )


def _encoded(url: str) -> str:
    """`url` as httpx writes it: IDNA host, percent-encoded UTF-8 path and query."""
    try:
        return str(httpx.URL(url))
    except httpx.InvalidURL as exc:
        raise BlockedDestination(f"the URL cannot be sent: {exc}") from None


def serialize(request: Request, target: Target) -> bytes:
    """The whole request as written: the head and the body, one buffer.

    `ValueError` for a header name or value that would break the head (CR, LF or NUL): a
    value is never allowed to start a header or a request of its own.
    """
    lines = [f"{request.method} {target.path} HTTP/1.1\r\nhost: {target.host_header}\r\n"]
    count = 0
    for name, value in request.headers:
        if name.lower() in _OWN_HEADERS:
            continue
        lines.append(f"{name}: {value}\r\n")
        count += 1
    if target.authorization is not None:
        lines.append(f"authorization: {target.authorization}\r\n")
        count += 1
    lines.append(f"content-length: {len(request.content)}\r\n\r\n")
    head = "".join(lines)
    if head.count("\n") != count + 4 or head.count("\r") != count + 4 or "\0" in head:
        raise ValueError("a header name or value holds a line break or a NUL")
    return head.encode("latin-1") + request.content


class Wire:
    """One hook's HTTP/1.1 client: up to `max_idle` idle connections per origin."""

    def __init__(
        self,
        policy: GuardPolicy,
        cache: ResolutionCache,
        ssl_context: ssl.SSLContext,
        *,
        max_idle: int,
        keepalive_expiry: float,
        connect_timeout: float | None,
        socket_factory: SocketFactory = plain_socket,
    ) -> None:
        self.policy = policy
        self._cache = cache
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._connect_timeout = connect_timeout
        self._socket_factory = socket_factory
        self._targets: dict[str, Target] = {}
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}

    async def exchange(self, request: Request, cap: int) -> Response:
        target = self._target(request.url)
        data = serialize(request, target)
        connection = self._pooled(target.origin)
        if connection is not None:
            try:
                response = await connection.exchange(data, cap)
            except Stale as stale:
                # closed as it was reused, before a byte of answer: sent again only when the
                # server cannot have acted on it, or acting twice is what the method allows
                if not stale.unread and request.method not in _REPLAYABLE:
                    raise httpx.ReadError(
                        f"{target.host} closed a kept-alive connection without answering:"
                        " the request may have reached it"
                    ) from None
            else:
                self._release(target.origin, connection)
                return response
        connection = await self._connect(target)
        response = await connection.exchange(data, cap)
        self._release(target.origin, connection)
        return response

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()  # idle: nothing is lost, and nothing is left open
        self._idle.clear()

    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url)
            if target.literal:
                # an address in the URL is checked as written: there is nothing to resolve
                try:
                    address = ip_address(target.host)
                except ValueError:
                    raise BlockedDestination(
                        f"destination refused: {target.host!r} is not an IP address in"
                        " canonical form"
                    ) from None
                check_addresses(target.host, [address], self.policy)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = target
        return target

    def _pooled(self, origin: tuple[str, str, int]) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest = time.monotonic() - self._expiry
        while idle:
            connection = idle.pop()
            fresh = not connection.closed and connection.idle_since > oldest
            if fresh and not connection.readable():  # readable: the server closed it
                return connection
            connection.close()
        return None

    def _release(self, origin: tuple[str, str, int], connection: Connection) -> None:
        if not connection.reusable or connection.closed:
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, target: Target) -> Connection:
        """A new connection to a vetted address of the target's host, trying each in turn."""
        host = target.host
        addresses = [host] if target.literal else await self._vetted(host, target.port)
        failure: Exception = httpx.ConnectError(f"{host} resolves to no usable address")
        for address in addresses:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    return await self._open(target, address)
            except TimeoutError:
                failure = httpx.ConnectTimeout(f"connecting to {host} timed out")
            except ssl.SSLError as exc:  # a refused certificate: another address would be no better
                raise httpx.ConnectError(f"TLS with {host} failed: {exc}") from None
            except OSError as exc:
                failure = httpx.ConnectError(f"cannot connect to {host}: {exc.strerror or exc}")
        raise failure

    async def _vetted(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to, once the guard has passed every one of them;
        resolving is bounded by the connect timeout, as a connect is."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                answers = await self._cache.resolve(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
        return [str(a) for a in check_addresses(host, answers, self.policy)]

    async def _open(self, target: Target, address: str) -> Connection:
        """A connection to `address` (vetted) on a socket of the factory's, TLS by host name."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        port = target.port
        where = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        sock = self._socket_factory((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", where))
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, where)
        except BaseException:
            sock.close()
            raise
        # the socket is the transport's from here: the loop closes it, whatever happens
        tls = target.scheme == "https"
        _, connection = await loop.create_connection(
            lambda: Connection(loop, target.host),
            sock=sock,
            ssl=self._ssl if tls else None,
            server_hostname=target.host if tls else None,
        )
        return connection
