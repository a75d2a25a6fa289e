"""`dispatcher hooks test`: the exact request a hook sends for an event, and with --send, its verdict."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from dispatcher.config.secrets import MASK
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, DecodeError, DeliveryError
from dispatcher.hooks.describe import mask_url
from dispatcher.http.clients import ClientPool
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.request import build_request, idempotency_key

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
PREVIEW_BYTES = 4096


def read_event(path: Path) -> Event:
    """The CloudEvent in a JSON file (its `data` may be any JSON)."""
    try:
        return Event.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, DecodeError) as exc:
        raise ConfigError(f"{path}: not a CloudEvent: {exc}") from None


def describe_request(request: httpx.Request, hook: Hook) -> str:
    """Method, URL, headers (credentials masked) and body, as they go on the wire."""
    secret_names = SECRET_HEADERS | _api_key_header(hook)
    url = request.url
    for name in _api_key_query(hook):  # whatever its name, it is the credential
        url = url.copy_set_param(name, MASK)
    lines = [f"{request.method} {mask_url(str(url))}"]
    for name, value in request.headers.multi_items():
        shown = MASK if name.lower() in secret_names else value
        if name.lower() == "authorization" and " " in value:
            shown = f"{value.split(' ', 1)[0]} {MASK}"
        lines.append(f"{name}: {shown}")
    if hook.auth.type == "oauth2_client_credentials":
        lines.append(f"authorization: Bearer {MASK}  (token from the token endpoint at send)")
    body = request.content
    text = body[:PREVIEW_BYTES].decode("utf-8", "replace")
    more = f"\n... ({len(body) - PREVIEW_BYTES} more bytes)" if len(body) > PREVIEW_BYTES else ""
    return "\n".join(lines) + "\n\n" + text + more


def probe_hook(hook: Hook, event_path: Path, settings: Settings, *, send: bool) -> tuple[int, str]:
    """Render (and optionally send) the request for one event; (exit code, text to print)."""
    event = read_event(event_path)
    key = idempotency_key(event, hook.id)
    try:
        request = build_request(hook, event, key)
    except DeliveryError as exc:
        return 1, f"render failed ({exc.kind}): {exc}"
    request = _with_credentials(request, hook)
    text = describe_request(request, hook)
    if not send:
        return 0, text
    verdict_text, ok = asyncio.run(_send(hook, build_request(hook, event, key), settings))
    return (0 if ok else 1), text + "\n\n" + verdict_text


def _with_credentials(request: httpx.Request, hook: Hook) -> httpx.Request:
    """Apply synchronous credentials (so their headers show, masked); OAuth2 is noted instead."""
    from dispatcher.security.auth import build_auth

    auth = build_auth(hook.auth)
    if auth is None or hook.auth.type == "oauth2_client_credentials":
        return request
    flow = auth.sync_auth_flow(request)
    return next(flow)


async def _send(hook: Hook, request: httpx.Request, settings: Settings) -> tuple[str, bool]:
    pool = ClientPool(settings)
    try:
        attempt = await pool.client_for(hook).send(request)
    finally:
        await pool.aclose()
    verdict = attempt.verdict
    lines = [
        f"verdict: {'delivered' if verdict.ok else 'failed'}",
        f"status: {verdict.status if verdict.status is not None else '-'}",
        f"latency: {attempt.seconds * 1000:.1f} ms",
    ]
    if not verdict.ok:
        retry = "retryable" if verdict.retryable else "permanent"
        lines.append(f"error: {verdict.kind} ({retry}): {verdict.error}")
    if verdict.captured:
        lines.append(f"captured: {json.dumps(verdict.captured, default=str)}")
    return "\n".join(lines), verdict.ok


def _api_key_header(hook: Hook) -> frozenset[str]:
    if hook.auth.type == "api_key" and hook.auth.get("in", "header") == "header":
        return frozenset({str(hook.auth.get("name", "")).lower()})
    return frozenset()


def _api_key_query(hook: Hook) -> frozenset[str]:
    if hook.auth.type == "api_key" and hook.auth.get("in", "header") == "query":
        return frozenset({str(hook.auth.get("name", ""))})
    return frozenset()
