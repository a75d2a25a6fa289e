"""Try a hook on one event: the exact request it would send (secrets masked), and, when asked,
the verdict on actually sending it. For the admin API's test endpoint and `hooks test`."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import httpx

from dispatcher.config.secrets import MASK
from dispatcher.config.settings import Settings
from dispatcher.errors import DeliveryError
from dispatcher.hooks.describe import mask_url
from dispatcher.http.clients import ClientPool
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.request import build_request, idempotency_key

_SENSITIVE = re.compile(r"auth|token|key|secret|pass|cookie|signature|session", re.IGNORECASE)
CREDENTIALS_NOTE = "credentials and signatures are added when sending, and never shown"


def render(hook: Hook, event: Event) -> tuple[httpx.Request | None, dict[str, Any]]:
    """The request for (event, hook) and how to show it; a render failure as a `verdict`."""
    try:
        request = build_request(hook, event, idempotency_key(event, hook.id))
    except DeliveryError as exc:
        return None, {"verdict": {"ok": False, "error_kind": exc.kind, "error": str(exc)}}
    return request, {"request": describe_request(request, hook)}


def describe_request(request: httpx.Request, hook: Hook) -> dict[str, Any]:
    """Method, masked URL, headers (credential-like values masked) and body (text or base64)."""
    body = request.content
    try:
        shown: dict[str, Any] = {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        shown = {"body_base64": base64.b64encode(body).decode()}
    headers = {
        name: MASK if _SENSITIVE.search(name) else value
        for name, value in request.headers.items()
        if name.lower() != "content-length"
    }
    return {
        "method": request.method,
        "url": mask_url(str(request.url)),
        "headers": headers,
        **shown,
        "auth": hook.auth.type,
        "note": CREDENTIALS_NOTE,
    }


def send(settings: Settings, hook: Hook, request: httpx.Request) -> dict[str, Any]:
    """Send `request` once with the hook's client (guard, TLS, credentials); the verdict."""
    return asyncio.run(_send(settings, hook, request))


async def _send(settings: Settings, hook: Hook, request: httpx.Request) -> dict[str, Any]:
    pool = ClientPool(settings)
    try:
        attempt = await pool.client_for(hook).send(request)
    finally:
        await pool.aclose()
    verdict = attempt.verdict
    return {
        "ok": verdict.ok,
        "status": verdict.status,
        "error_kind": verdict.kind,
        "error": verdict.error,
        "retryable": verdict.retryable,
        "captured": verdict.captured,
        "seconds": round(attempt.seconds, 4),
    }
