"""The HTTP transport every delivery goes through: a keep-alive pool behind the destination guard.

The guard sits in the network backend, where httpcore opens a TCP connection: the host is
resolved once, every address is checked, and the socket is opened to a vetted IP, so DNS
rebinding cannot swap the address between check and connect. httpcore still hands the host
*name* to `start_tls`, so SNI and certificate verification are on the name. Redirects are the
client's business (it must set `follow_redirects=False`); proxies are never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from ipaddress import ip_address

import httpcore
import httpx

from dispatcher.errors import BlockedDestination, ConfigError
from dispatcher.security.guard import (
    GuardPolicy,
    IPAddress,
    Resolver,
    SystemResolver,
    check_addresses,
)

SCHEMES = frozenset({"http", "https"})
DEFAULT_DNS_TTL = 30.0
_MAX_CACHED_HOSTS = 4096


class ResolutionCache:
    """Answers of a resolver kept for `ttl` seconds; concurrent look-ups of one host share one."""

    def __init__(
        self, resolver: Resolver, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolver = resolver
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        # shield: one caller giving up must not cancel the look-up the others wait on
        return await asyncio.shield(pending)

    async def _fetch(self, key: tuple[str, int]) -> list[str]:
        addresses = await self._resolver.resolve(*key)
        if self._ttl > 0:
            if len(self._entries) >= _MAX_CACHED_HOSTS:
                now = self._clock()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._entries[key] = (self._clock() + self._ttl, addresses)
        return addresses

    def _settle(self, key: tuple[str, int], done: asyncio.Future[list[str]]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, so an answer nobody waited for is not reported


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the guard policy admits."""

    def __init__(
        self,
        policy: GuardPolicy,
        resolver: Resolver | None = None,
        *,
        dns_ttl: float = DEFAULT_DNS_TTL,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._resolver = ResolutionCache(resolver or SystemResolver(), dns_ttl)
        self._inner = inner or httpcore.AnyIOBackend()

    async def vetted(self, host: str, port: int, timeout: float | None) -> tuple[IPAddress, ...]:
        """The addresses of `host` to connect to; BlockedDestination if any one is refused."""
        with contextlib.suppress(ValueError):  # an IP literal is checked as it is
            return check_addresses(host, [ip_address(host)], self.policy)
        try:
            async with asyncio.timeout(timeout):
                answers = await self._resolver.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = check_addresses(host, answers, self.policy)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = await self.vetted(host, port, timeout)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=left,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedDestination("unix sockets are not a hook destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's errors as httpx's, so callers see one family (as httpx's own transport does)
_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
}


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((_ERRORS[t] for t in type(exc).__mro__ if t in _ERRORS), None)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpcore.Response) -> None:
        self._response = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        await self._response.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections pass the destination guard."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in SCHEMES:
            raise BlockedDestination(f"scheme {url.scheme!r} refused: only http and https")
        if not url.raw_host:
            raise BlockedDestination(f"{url} names no host")
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("an async transport needs an async request body")
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._pool.aclose()


def build_transport(
    *,
    policy: GuardPolicy,
    ssl_context: ssl.SSLContext | bool = True,
    resolver: Resolver | None = None,
    max_connections: int = 100,
    keepalive: int = 100,
    keepalive_expiry: float = 5.0,
    http2: bool = False,
    dns_ttl: float = DEFAULT_DNS_TTL,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncBaseTransport:
    """A pooled, guarded transport; `ssl_context=False` turns certificate checks off.

    `network_backend` is the socket layer under the guard (default: anyio's); it only ever
    receives vetted IP addresses.
    """
    if http2 and importlib.util.find_spec("h2") is None:
        raise ConfigError("http2 needs the h2 package: pip install 'httpx[http2]'")
    context = (
        ssl_context
        if isinstance(ssl_context, ssl.SSLContext)
        else httpx.create_ssl_context(verify=ssl_context)
    )
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=max_connections,
        max_keepalive_connections=keepalive,
        keepalive_expiry=keepalive_expiry,
        http1=True,
        http2=http2,
        network_backend=GuardedBackend(policy, resolver, dns_ttl=dns_ttl, inner=network_backend),
    )
    return GuardedTransport(pool)
