"""Try a hook on one event: the exact request it would send, secrets masked, why the event is
not for the hook (if it is not), and, when asked, the verdict on sending it once, which is never
sent when the dispatcher would not send it. The one piece behind `dispatcher hooks test`, the
admin API's test endpoint and the console's *Try*, so all show a request, and send, alike."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, DecodeError, DeliveryError, PermanentError
from dispatcher.hooks.masking import api_key_names, mask_body, mask_header, mask_text
from dispatcher.http.pool import ClientPool
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import idempotency_key
from dispatcher.model.request import Request
from dispatcher.pipeline.filter import exclusions
from dispatcher.pipeline.request import build_request
from dispatcher.security.auth import Credentials, build_auth

NOT_FOR_THE_HOOK = "the dispatcher would not send this event to this hook"
CREDENTIALS_NOTE = "credentials and signatures are added when sending, and never shown"
OAUTH2_NOTE = "authorization: Bearer *** comes from the token endpoint when sending"


@dataclass(frozen=True, slots=True)
class ShownRequest:
    """A request as it may be shown: method, masked URL and headers, the body as sent."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    auth: str

    def as_dict(self) -> dict[str, Any]:
        try:
            body: dict[str, str] = {"body": self.body.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_base64": base64.b64encode(self.body).decode()}
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            **body,
            "auth": self.auth,
            "note": OAUTH2_NOTE if self.auth == "oauth2_client_credentials" else CREDENTIALS_NOTE,
        }


@dataclass(frozen=True, slots=True)
class TrialVerdict:
    """What sending the request once came to."""

    ok: bool
    status: int | None
    error_kind: str | None
    error: str | None
    retryable: bool
    captured: dict[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "error_kind": self.error_kind,
            "error": self.error,
            "retryable": self.retryable,
            "captured": self.captured,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True, slots=True)
class Trial:
    """A hook tried on an event: the request (None when it cannot be rendered) and how it shows,
    or the render failure."""

    request: Request | None
    shown: ShownRequest | None
    failure: DeliveryError | None = None
    excluded: tuple[str, ...] = ()  # why the event is not for the hook (type, tenant, filter)


@dataclass(frozen=True, slots=True)
class NotSent:
    """A trial not sent: its event is not for the hook (`excluded`: its type, tenant, filter)."""

    excluded: tuple[str, ...]
    reason: str = NOT_FOR_THE_HOOK


def read_event(path: Path) -> Event:
    """The CloudEvent in a JSON file (its `data` may be any JSON)."""
    try:
        return Event.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, DecodeError) as exc:
        raise ConfigError(f"{path}: not a CloudEvent: {exc}") from None


def prepare(hook: Hook, event: Event) -> Trial:
    """The request for (event, hook), how it shows with its credentials applied, and why the
    event would not be for the hook (its type, tenant or filter), if it would not."""
    excluded = tuple(exclusions(hook, event))
    if hook.unusable is not None:  # what the workers do with its pairs: a `config` dead letter
        failure = PermanentError(f"the hook is unusable: {hook.unusable}", kind="config")
        return Trial(None, None, failure, excluded)
    try:
        request = build_request(hook, event, idempotency_key(event, hook.id))
    except DeliveryError as exc:
        return Trial(None, None, exc, excluded)
    return Trial(request, show_request(_with_credentials(request, hook), hook), None, excluded)


def show_request(request: Request, hook: Hook) -> ShownRequest:
    """`request` masked: the hook's api key, credential-like headers and query values, and
    whatever came from a secret reference (in the URL, a header, the body)."""
    key_headers = api_key_names(hook)[0]
    headers = tuple(
        (name.lower(), mask_header(name, value, key_headers)) for name, value in request.headers
    )
    url = mask_text(str(request.url), hook)
    body = mask_body(request.content, hook)
    return ShownRequest(request.method, url, headers, body, hook.auth.type)


def send(settings: Settings, hook: Hook, tried: Trial) -> TrialVerdict | NotSent:
    """Send the trial's request once with the hook's client (guard, TLS, credentials): the
    verdict. An event that is not for the hook is not sent (`NotSent`): the dispatcher would
    never send it there, and a third party should not get from a try what it never will."""
    if tried.excluded:
        return NotSent(tried.excluded)
    assert tried.request is not None, "a trial that rendered no request has nothing to send"
    return asyncio.run(_send(settings, hook, tried.request))


async def _send(settings: Settings, hook: Hook, request: Request) -> TrialVerdict:
    pool = ClientPool(settings)
    try:
        attempt = await pool.client_for(hook).send(request)
    finally:
        await pool.aclose()
    verdict = attempt.verdict
    return TrialVerdict(
        ok=verdict.ok,
        status=verdict.status,
        error_kind=verdict.kind,
        error=verdict.error,
        retryable=verdict.retryable,
        captured=dict(verdict.captured),
        seconds=attempt.seconds,
    )


def _with_credentials(request: Request, hook: Hook) -> Request:
    """The request with its hook's credentials applied, so their headers show (masked); the
    one sent is signed again, at its own time. OAuth2's token comes from its endpoint when
    sending, and is only noted."""
    auth = build_auth(hook.auth)
    return auth.apply(request) if isinstance(auth, Credentials) else request
