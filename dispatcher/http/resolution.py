"""Name resolution for deliveries: a shared, time-limited cache and the guard as aiohttp's resolver.

The transport's connector resolves every new connection through `GuardedResolver`, which
answers only with addresses the destination guard admits; the socket is then opened to one of
those very addresses, so DNS rebinding cannot swap it between check and connect.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from aiohttp.abc import AbstractResolver, ResolveResult

from dispatcher.security.guard import GuardPolicy, Resolver, check_addresses

DEFAULT_DNS_TTL = 30.0
_MAX_CACHED_HOSTS = 4096
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


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
