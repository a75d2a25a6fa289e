"""One `HookClient` per hook definition, built with its guarded transport, TLS and credentials."""

from __future__ import annotations

import logging

import httpx

from dispatcher.config.settings import Settings
from dispatcher.http.sender import HookClient
from dispatcher.http.transport import GuardedTransport, build_transport
from dispatcher.model.hook import Hook
from dispatcher.security.auth import TOKEN_TIMEOUT, build_auth
from dispatcher.security.guard import GuardPolicy
from dispatcher.security.tls import ssl_context_for

log = logging.getLogger(__name__)


class ClientPool:
    """Builds hook clients on first use; a changed hook definition gets a fresh client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, HookClient] = {}
        self._retired: list[HookClient | httpx.AsyncClient] = []

    def client_for(self, hook: Hook) -> HookClient:
        client = self._clients.get(hook.id)
        # the same definition is the same object until the hooks change: `is` spares comparing
        # every field of a hook on every delivery
        if client is not None and (client.hook is hook or client.hook == hook):
            return client
        if client is not None:
            self._retired.append(client)
        client = HookClient(hook, self._transport(hook), self._auth(hook))
        self._clients[hook.id] = client
        return client

    def refusing(self) -> list[HookClient]:
        """The clients whose circuit refuses calls now. Safe from another thread (the
        consumer's): the clients are copied at once, and a breaker read as it changes state
        is only read a moment early or late."""
        return [client for client in list(self._clients.values()) if client.breaker.refuses()]

    def breaker_states(self) -> dict[str, str]:
        return {hook_id: c.breaker.state for hook_id, c in self._clients.items()}

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()

    def policy_for(self, hook: Hook) -> GuardPolicy:
        """The destination guard for `hook`: its own `allow_private_networks` and
        `allow_loopback`, else the service's."""
        private, loopback = hook.allow_private_networks, hook.allow_loopback
        return GuardPolicy(
            allow_private=self.settings.allow_private_networks if private is None else private,
            allow_cidrs=self.settings.allow_cidrs,
            allow_loopback=self.settings.allow_loopback if loopback is None else loopback,
        )

    def _transport(self, hook: Hook, connections: int | None = None) -> GuardedTransport:
        if not hook.tls.verify:
            log.warning("hook %s: TLS certificate verification is OFF (tls.verify: false)", hook.id)
        size = connections or max(hook.concurrency, 1)
        return build_transport(
            policy=self.policy_for(hook),
            ssl_context=ssl_context_for(hook),
            max_connections=size,
            keepalive=size,
            timeout=hook.timeout,
        )

    def _auth(self, hook: Hook) -> httpx.Auth | None:
        token_client = None
        if hook.auth.type == "oauth2_client_credentials":
            # Token requests go through the same guard as deliveries, on a client of their own.
            token_client = httpx.AsyncClient(
                transport=self._transport(hook, connections=2),
                follow_redirects=False,
                timeout=TOKEN_TIMEOUT,
                trust_env=False,
            )
            self._retired.append(token_client)
        return build_auth(hook.auth, token_client=token_client)
