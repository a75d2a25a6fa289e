"""A hook's guarded transport: deliveries on the lean client, httpx requests on aiohttp.

`exchange` sends the delivery path's plain requests on `wire`, an HTTP/1.1 client of our own
(a tenth of aiohttp's CPU per request). As an httpx transport it serves what still speaks httpx
(OAuth2 token requests, tests) on an aiohttp session (`aiosession`), made on the first such
request, so a worker whose hooks need none never loads aiohttp. Both resolve through one cache
and vet every address the same way: every new connection connects to an address the
destination guard admitted, while SNI and the certificate check stay on the host name. aiohttp
does not resolve IP-literal hosts, so the transport checks those itself before sending.
Redirects are never followed, proxies and environment settings never used, and aiohttp's
errors surface as httpx's.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Coroutine
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

import httpx

from dispatcher.errors import BlockedDestination, ConfigError
from dispatcher.http.exchange import Response
from dispatcher.http.resolution import DEFAULT_DNS_TTL, ResolutionCache
from dispatcher.http.wire import Wire, plain_socket
from dispatcher.model.request import Request
from dispatcher.security.guard import GuardPolicy, Resolver, SystemResolver, check_addresses

if TYPE_CHECKING:
    import aiohttp

    from dispatcher.http.aiosession import AioSession

__all__ = ["DEFAULT_DNS_TTL", "GuardedTransport", "ResolutionCache", "build_transport"]

SCHEMES = frozenset({"http", "https"})
_MAX_VETTED_HOSTS = 1024
# seconds an idle connection is kept: under the 5 s idle timeout of Node.js and Apache, so a
# server seldom closes a connection just as it is reused (a POST is then not sent again)
KEEPALIVE_EXPIRY = 4.0


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session whose connections pass the destination guard."""

    def __init__(self, policy: GuardPolicy, wire: Wire, session: Callable[[], AioSession]) -> None:
        self.policy = policy
        self._wire = wire
        self._new_session = session
        self._session: AioSession | None = None  # made on the first httpx request
        self._vetted: set[str] = set()  # hosts that need no literal check again

    def _check_host(self, host: str) -> None:
        """Refuse an IP-literal host the guard does not admit; aiohttp would not resolve it."""
        if host in self._vetted:
            return
        # aiohttp takes any host with a colon, or of digits and dots, for an address
        if ":" in host or host.replace(".", "").isdigit():
            try:
                address = ip_address(host)
            except ValueError:
                raise BlockedDestination(
                    f"destination refused: {host!r} is not an IP address in canonical form"
                ) from None
            check_addresses(host, [address], self.policy)
        if len(self._vetted) >= _MAX_VETTED_HOSTS:
            self._vetted.clear()
        self._vetted.add(host)

    def exchange(self, request: Request, cap: int) -> Coroutine[Any, Any, Response]:
        """Send `request` and read at most `cap` decoded body bytes: the delivery path, on the
        lean client of `wire` (no aiohttp, no httpx objects), guarded the same way. (The
        wire's own coroutine: no frame of this one's around every request.)"""
        return self._wire.exchange(request, cap)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in SCHEMES:
            raise BlockedDestination(f"scheme {url.scheme!r} refused: only http and https")
        if not url.raw_host:
            raise BlockedDestination(f"{url} names no host")
        if self._session is None:
            self._session = self._new_session()
        return await self._session.send(request, self._check_host)

    async def aclose(self) -> None:
        await self._wire.aclose()
        if self._session is not None:
            await self._session.aclose()
            self._session = None


def build_transport(
    *,
    policy: GuardPolicy,
    ssl_context: ssl.SSLContext | bool = True,
    resolver: Resolver | None = None,
    max_connections: int = 100,
    keepalive: int = 100,
    keepalive_expiry: float = KEEPALIVE_EXPIRY,
    http2: bool = False,
    dns_ttl: float = DEFAULT_DNS_TTL,
    socket_factory: aiohttp.SocketFactoryType | None = None,
    timeout: float | None = None,
) -> GuardedTransport:
    """A pooled, guarded transport; `ssl_context=False` turns certificate checks off.

    `keepalive` is accepted for the callers' sake: both clients keep idle connections for
    `keepalive_expiry` seconds, up to `max_connections` (per origin on the delivery path).
    `socket_factory` makes the sockets of both (for tests that record where connections go);
    it only ever sees vetted addresses. `timeout` bounds resolving a name and connecting to
    an address on the delivery path (a delivery's whole exchange is bounded by its hook's
    timeout; httpx requests carry their own).
    """
    if http2:
        raise ConfigError("http2 is not supported by the delivery transport (it is HTTP/1.1)")
    context = (
        ssl_context
        if isinstance(ssl_context, ssl.SSLContext)
        else httpx.create_ssl_context(verify=ssl_context)
    )
    cache = ResolutionCache(resolver or SystemResolver(), dns_ttl)
    wire = Wire(
        policy,
        cache,
        context,
        max_idle=max_connections,
        keepalive_expiry=keepalive_expiry,
        connect_timeout=timeout,
        socket_factory=socket_factory or plain_socket,
    )

    def session() -> AioSession:
        from dispatcher.http.aiosession import AioSession  # only now: see the module's text

        return AioSession(
            policy,
            cache,
            context,
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            socket_factory=socket_factory,
        )

    return GuardedTransport(policy, wire, session)
