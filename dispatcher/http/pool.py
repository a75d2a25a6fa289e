"""One `HookClient` per hook definition in use: its guarded transport, TLS, credentials, limits."""

from __future__ import annotations

import asyncio
import logging
import ssl

import httpx

from dispatcher.config.settings import Settings
from dispatcher.http.sender import HookClient
from dispatcher.http.transport import GuardedTransport, build_transport
from dispatcher.model.hook import Hook
from dispatcher.security.auth import build_auth
from dispatcher.security.guard import GuardPolicy
from dispatcher.security.oauth2 import TOKEN_TIMEOUT
from dispatcher.security.tls import ssl_context_for, token_context_for

log = logging.getLogger(__name__)


class ClientPool:
    """Builds hook clients on first use: one per hook definition with pairs on it.

    A client holds what its definition says beyond the request itself (the request's URL,
    headers and body come from the pair's own hook): the credentials, TLS and mTLS, the
    destination guard, the timeout, how answers are judged, and the concurrency limit, rate
    limit and circuit breaker. So a pair is sent on the client of its own definition, never on
    another's: after an edit, the pairs of the old definition still in flight or queued would
    otherwise be sent with the new credentials, certificates and checks, to the old URL.

    Each hook id has a current client, of the definition last built (the edit, in the normal
    course); the clients of the definitions it superseded are kept for their pairs (an older
    pair asking for its definition gets that same client back, whatever the order pairs ask
    in: no rebuild, and its limits and breaker hold) and closed once nothing runs on them
    (`HookClient.idle`): on the turn of the event loop after their last pair ended, or after
    the turn that retired them when none was running (the pairs of one batch take their
    clients within one turn). A pair whose definition's client was closed meanwhile (one
    started before the edit but taken in only now) gets a new one, the current client from then.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, HookClient] = {}
        self._retired: list[HookClient] = []  # of older definitions, still with pairs
        self._token_clients: dict[HookClient, httpx.AsyncClient] = {}  # OAuth2 token requests
        self._closing: set[asyncio.Task[None]] = set()

    def client_for(self, hook: Hook) -> HookClient:
        """The client of `hook`'s definition (built on first use)."""
        client = self._clients.get(hook.id)
        # the same definition is the same object until the hooks change: `is` spares comparing
        # every field of a hook on every delivery
        if client is not None and (client.hook is hook or client.hook == hook):
            return client
        for older in self._retired:
            if older.hook is hook or (older.hook.id == hook.id and older.hook == hook):
                return older
        if client is not None:
            self._retire(client)
        client = self._clients[hook.id] = self._build(hook)
        return client

    def refusing(self) -> list[HookClient]:
        """The clients whose circuit refuses calls now, of every definition. Safe from another
        thread (the consumer's): the clients are copied at once, and a breaker read as it
        changes state is only read a moment early or late."""
        clients = [*list(self._clients.values()), *list(self._retired)]
        return [client for client in clients if client.breaker.refuses()]

    async def aclose(self) -> None:
        clients = [*self._clients.values(), *self._retired]
        self._clients.clear()
        self._retired.clear()
        for client in clients:
            await self._aclose(client)
        while self._closing:
            await asyncio.gather(*self._closing)

    def _build(self, hook: Hook) -> HookClient:
        token_client = self._token_client(hook)
        client = HookClient(
            hook, self._transport(hook), build_auth(hook.auth, token_client=token_client)
        )
        if token_client is not None:
            self._token_clients[client] = token_client
        return client

    def _retire(self, client: HookClient) -> None:
        """Keep `client` for the pairs of its definition until nothing runs on it."""
        self._retired.append(client)
        client.on_idle = self._close_soon
        self._close_soon(client)

    def _close_soon(self, client: HookClient) -> None:
        """Close `client` on the next turn of the loop if nothing runs on it then: after the
        pairs of this turn took their clients, and after the slot of a task that ended
        without using it came back (`Slots`, in a callback of that task's end)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to close it on: `aclose` does
            return
        loop.call_soon(self._close_if_idle, client)

    def _close_if_idle(self, client: HookClient) -> None:
        if client not in self._retired or not client.idle():  # closed already, or in use
            return
        self._retired.remove(client)
        task = asyncio.get_running_loop().create_task(self._aclose(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _aclose(self, client: HookClient) -> None:
        await client.aclose()
        token_client = self._token_clients.pop(client, None)
        if token_client is not None:
            await token_client.aclose()

    def policy_for(self, hook: Hook) -> GuardPolicy:
        """The destination guard for `hook`: its own `allow_private_networks` and
        `allow_loopback`, else the service's."""
        private, loopback = hook.allow_private_networks, hook.allow_loopback
        return GuardPolicy(
            allow_private=self.settings.allow_private_networks if private is None else private,
            allow_cidrs=self.settings.allow_cidrs,
            allow_loopback=self.settings.allow_loopback if loopback is None else loopback,
        )

    def _transport(self, hook: Hook) -> GuardedTransport:
        """The transport of `hook`'s deliveries, with the TLS settings of its API."""
        if not hook.tls.verify:
            log.warning("hook %s: TLS certificate verification is OFF (tls.verify: false)", hook.id)
        return self._guarded(hook, ssl_context_for(hook), max(hook.concurrency, 1))

    def _guarded(self, hook: Hook, context: ssl.SSLContext, connections: int) -> GuardedTransport:
        return build_transport(
            policy=self.policy_for(hook),
            ssl_context=context,
            max_connections=connections,
            keepalive=connections,
            timeout=hook.timeout,
        )

    def _token_client(self, hook: Hook) -> httpx.AsyncClient | None:
        """OAuth2's client for token requests: through the same guard as deliveries, with a
        TLS context of its own that always verifies the token endpoint (`token_context_for`):
        `tls.verify: false` and a private `tls.ca` are about the API, and the token endpoint
        receives the client secret."""
        if hook.auth.type != "oauth2_client_credentials":
            return None
        return httpx.AsyncClient(
            transport=self._guarded(hook, token_context_for(hook), connections=2),
            follow_redirects=False,
            timeout=TOKEN_TIMEOUT,
            trust_env=False,
        )
