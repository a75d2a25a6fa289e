"""The aiohttp side of a hook's guarded transport: httpx requests (OAuth2 token requests, tests)
on an aiohttp session, several times faster than httpcore's async pool under load.

Imported on the first such request only: the delivery path never needs aiohttp (~9 MB of a
worker's memory). The destination guard is the session's resolver (`GuardedResolver`): every
new connection resolves through the shared cache and connects to an address the guard vetted,
while SNI and the certificate check stay on the host name. Redirects are never followed,
proxies and environment settings never used, and aiohttp's errors surface as httpx's.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from dispatcher.errors import BlockedDestination
from dispatcher.http.resolution import ResolutionCache
from dispatcher.security.guard import GuardPolicy, check_addresses

# httpx has already written these; aiohttp must neither add nor duplicate them
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


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


class AioSession:
    """One transport's aiohttp session, built on first use inside the running loop it belongs to."""

    def __init__(
        self,
        policy: GuardPolicy,
        cache: ResolutionCache,
        context: ssl.SSLContext,
        *,
        max_connections: int,
        keepalive_expiry: float,
        socket_factory: aiohttp.SocketFactoryType | None = None,
    ) -> None:
        self._resolver = GuardedResolver(policy, cache)
        self._context = context
        self._limit = max_connections
        self._expiry = keepalive_expiry
        self._socket_factory = socket_factory
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit,
                    limit_per_host=0,
                    ssl=self._context,
                    keepalive_timeout=self._expiry,
                    resolver=self._resolver,
                    use_dns_cache=False,  # every connection passes the guard (our cache caches)
                    socket_factory=self._socket_factory,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies are httpx's business
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                auto_decompress=False,  # httpx decodes Content-Encoding
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

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

    async def send(
        self, request: httpx.Request, check_host: Callable[[str], None]
    ) -> httpx.Response:
        """`request` on the session, once `check_host` has passed the host aiohttp will use."""
        target = URL(str(request.url), encoded=True)
        host = target.raw_host or ""
        check_host(host)
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
        if self._session is not None:
            await self._session.close()
            self._session = None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver hook: resolves through the cache and returns only vetted addresses.

    A refused address raises `BlockedDestination` (not an `OSError`, so aiohttp lets it through
    unwrapped); a failed look-up raises the resolver's `OSError`, which aiohttp reports as a
    DNS error. The answers carry the host name, so TLS checks the name, not the address.
    """

    def __init__(self, policy: GuardPolicy, cache: ResolutionCache) -> None:
        self.policy = policy
        self._cache = cache

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._cache.resolve(host, port)
        results: list[ResolveResult] = []
        for address in check_addresses(host, answers, self.policy):
            kind = socket.AF_INET if isinstance(address, IPv4Address) else socket.AF_INET6
            if family in (socket.AF_UNSPEC, kind):
                results.append(
                    {
                        "hostname": host,
                        "host": str(address),
                        "port": port,
                        "family": kind,
                        "proto": 0,
                        "flags": _NUMERIC,
                    }
                )
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} resolves to no usable address")
        return results

    async def close(self) -> None:
        """Nothing to release: the cache outlives any one connector."""
