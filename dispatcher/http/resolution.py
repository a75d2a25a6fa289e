"""Name resolution for deliveries: a shared, time-limited cache of a resolver's answers.

Every new connection resolves through it, and the destination guard then vets the answers
(`wire`, and `aiosession.GuardedResolver` for aiohttp); the socket is opened to one of those
very addresses, so DNS rebinding cannot swap it between check and connect.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from dispatcher.security.guard import Resolver

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
