"""One `HookClient` per hook definition, built with its transport, TLS and credentials."""

from __future__ import annotations

import logging

import httpx

from dispatcher.delivery.sender import HookClient
from dispatcher.hooks.model import Hook
from dispatcher.settings import Settings

log = logging.getLogger(__name__)


class ClientPool:
    """Builds hook clients on first use; a changed hook definition gets a fresh client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, HookClient] = {}
        self._retired: list[HookClient] = []

    def client_for(self, hook: Hook) -> HookClient:
        client = self._clients.get(hook.id)
        if client is not None and client.hook == hook:
            return client
        if client is not None:
            self._retired.append(client)
        client = HookClient(hook, self._transport(hook), self._auth(hook))
        self._clients[hook.id] = client
        return client

    def breaker_states(self) -> dict[str, str]:
        return {hook_id: c.breaker.state for hook_id, c in self._clients.items()}

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()

    def _transport(self, hook: Hook) -> httpx.AsyncBaseTransport:
        from dispatcher.delivery.transport import build_transport
        from dispatcher.security.guard import GuardPolicy
        from dispatcher.security.tls import ssl_context_for

        allow = hook.allow_private_networks
        policy = GuardPolicy(
            allow_private=self.settings.allow_private_networks if allow is None else allow,
            allow_cidrs=self.settings.allow_cidrs,
        )
        connections = max(hook.concurrency, 1)
        return build_transport(
            policy=policy,
            ssl_context=ssl_context_for(hook),
            max_connections=connections,
            keepalive=connections,
        )

    def _auth(self, hook: Hook) -> httpx.Auth | None:
        from dispatcher.security.auth import build_auth

        return build_auth(hook.auth)
