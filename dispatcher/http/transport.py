"""A hook's guarded transport: deliveries on the lean client, httpx requests on aiohttp.

`exchange` sends the delivery path's plain requests on `wire`, an HTTP/1.1 client of our own
(a tenth of aiohttp's CPU per request). As an httpx transport it serves what still speaks httpx
(OAuth2 token requests, tests) on aiohttp, several times faster than httpcore's async pool
under load. Both resolve through one cache and vet every address the same way. For aiohttp
the destination guard is its resolver (see `resolution`): every
new connection resolves through it and connects to an address it vetted, while SNI and the
certificate check stay on the host name. aiohttp does not resolve IP-literal hosts, so the
transport checks those itself before sending. Redirects are never followed, proxies and
environment settings never used, and aiohttp's errors surface as httpx's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from ipaddress import ip_address

import aiohttp
import httpx
from yarl import URL

from dispatcher.errors import BlockedDestination, ConfigError
from dispatcher.http.exchange import Response
from dispatcher.http.resolution import DEFAULT_DNS_TTL, GuardedResolver, ResolutionCache
from dispatcher.http.wire import Wire
from dispatcher.model.request import Request
from dispatcher.security.guard import GuardPolicy, Resolver, SystemResolver, check_addresses

__all__ = ["DEFAULT_DNS_TTL", "GuardedTransport", "ResolutionCache", "build_transport"]

SCHEMES = frozenset({"http", "https"})
# httpx has already written these; aiohttp must neither add nor duplicate them
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_MAX_VETTED_HOSTS = 1024


def translate(exc: Exception, host: str) -> Exception:
    """The exception to raise for `exc`, an aiohttp or socket error while talking to `host`."""
    causes: list[BaseException] = [exc]
    while (cause := causes[-1].__cause__) is not None and len(causes) < 8:
        causes.append(cause)
    for cause in causes:
        if isinstance(cause, BlockedDestination):
            return cause  # a refusal is a refusal, however deeply aiohttp wrapped it
    if any(isinstance(cause, ssl.SSLError) for cause in causes):
        # e.g. a refused client certificate, which TLS 1.3 reports after the handshake
        return httpx.ConnectError(str(exc) or "TLS failure")
    text = _text(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return httpx.ConnectError(f"cannot resolve {host}: {exc.os_error}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(f"connecting to {host} timed out")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(f"reading from {host} timed out")
    if isinstance(exc, aiohttp.ClientConnectorError | ssl.SSLError):
        return httpx.ConnectError(text)  # refused, unreachable, or a failed TLS handshake
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(text)  # cut short, malformed, or a flood of headers
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(text)
    return exc


def _text(exc: Exception) -> str:
    """`exc` as text without the request URL some aiohttp errors carry: with `api_key` auth
    `in: query`, the URL holds the key, and this text goes to dead letters and results."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{exc.status}, message={exc.message!r}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    return str(exc) or type(exc).__name__


class _Body(httpx.AsyncByteStream):
    """aiohttp's response payload as httpx reads it: raw bytes, as they arrive."""

    def __init__(self, response: aiohttp.ClientResponse, host: str) -> None:
        self._response = response
        self._host = host

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise translate(exc, self._host) from exc

    async def aclose(self) -> None:
        # a body not read to its end leaves the connection unusable: close it, do not pool it
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session whose connections pass the destination guard."""

    def __init__(
        self,
        policy: GuardPolicy,
        connector: Callable[[], aiohttp.BaseConnector],
        wire: Wire,
    ) -> None:
        self.policy = policy
        self._connector = connector
        self._session: aiohttp.ClientSession | None = None
        self._vetted: set[str] = set()  # hosts that need no literal check again
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._wire = wire

    def _client(self) -> aiohttp.ClientSession:
        # built on first use, inside the running loop the session belongs to
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=self._connector(),
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies are httpx's business
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                auto_decompress=False,  # httpx decodes Content-Encoding
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

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

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            timeout = aiohttp.ClientTimeout(
                total=None,
                # aiohttp's `connect` spans waiting for a pooled connection, resolving, connecting
                connect=None if connect is None or pool is None else connect + pool,
                sock_connect=connect,
                sock_read=read,
            )
            self._timeouts = {**self._timeouts, key: timeout} if len(self._timeouts) < 64 else {}
        return timeout

    async def exchange(self, request: Request, cap: int) -> Response:
        """Send `request` and read at most `cap` decoded body bytes: the delivery path, on the
        lean client of `wire` (no aiohttp, no httpx objects), guarded the same way."""
        return await self._wire.exchange(request, cap)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in SCHEMES:
            raise BlockedDestination(f"scheme {url.scheme!r} refused: only http and https")
        if not url.raw_host:
            raise BlockedDestination(f"{url} names no host")
        target = URL(str(url), encoded=True)
        host = target.raw_host or ""
        self._check_host(host)
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        if "transfer-encoding" in request.headers:  # the body is whole: aiohttp sends its length
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        try:
            response = await self._client().request(
                request.method,
                target,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request),
            )
        except Exception as exc:
            raise translate(exc, host) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, host),
            extensions={
                "http_version": f"HTTP/{response.version[0]}.{response.version[1]}".encode()
                if response.version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        await self._wire.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


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
    socket_factory: aiohttp.SocketFactoryType | None = None,
    timeout: float | None = None,
) -> GuardedTransport:
    """A pooled, guarded transport; `ssl_context=False` turns certificate checks off.

    `keepalive` is accepted for the callers' sake: aiohttp keeps every idle connection, up to
    `max_connections`, for `keepalive_expiry` seconds. `socket_factory` makes the sockets
    (for tests that record them); it only ever sees vetted addresses. `timeout` bounds
    connecting and each read of `exchange` (httpx requests carry their own).
    """
    if http2:
        raise ConfigError("http2 is not supported by the delivery transport (aiohttp is HTTP/1.1)")
    context = (
        ssl_context
        if isinstance(ssl_context, ssl.SSLContext)
        else httpx.create_ssl_context(verify=ssl_context)
    )
    cache = ResolutionCache(resolver or SystemResolver(), dns_ttl)
    guarded = GuardedResolver(policy, cache)
    wire = Wire(
        policy,
        cache,
        context,
        max_idle=max_connections,
        keepalive_expiry=keepalive_expiry,
        connect_timeout=timeout,
    )

    def connector() -> aiohttp.BaseConnector:
        return aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            ssl=context,
            keepalive_timeout=keepalive_expiry,
            resolver=guarded,
            use_dns_cache=False,  # every new connection passes the guard (our cache caches)
            socket_factory=socket_factory,
        )

    return GuardedTransport(policy, connector, wire)
