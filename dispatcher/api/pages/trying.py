"""Try a hook (admin role): an event type and sample data, the exact request it renders (masked
where secret), whether the event is for the hook (its filter), and, when asked, the response's
verdict with the check that failed; an event the dispatcher would not send there is not sent
(`dispatcher.ops.trial`, as `hooks test --send` and the API)."""

from __future__ import annotations

import json
import time
import uuid
from fnmatch import fnmatchcase
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api import editing, scope
from dispatcher.api.pages.common import form_of, render, service_of, session_of
from dispatcher.api.sessions import Session
from dispatcher.errors import DecodeError
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.model.moments import iso
from dispatcher.ops import trial
from dispatcher.pipeline.match import GLOB_CHARACTERS

router = APIRouter(include_in_schema=False)
SAMPLE = '{\n  "order_id": "A-1001"\n}'


@router.get("/hooks/{hook_id}/try", response_class=HTMLResponse)
def try_page(request: Request, hook_id: str) -> HTMLResponse:
    session = session_of(request, "admin")
    hook = scope.hook(service_of(request), session.principal, hook_id)
    types = _types(hook)
    return render(
        request, "try.html", session, hook=hook, types=types, event_type=types[0], data=SAMPLE
    )


@router.post("/hooks/{hook_id}/try", response_class=HTMLResponse)
async def try_hook(request: Request, hook_id: str) -> HTMLResponse:
    """The request rendered for the form's event, and why the event is not for the hook, if it
    is not; with *send*, the verdict, or why nothing was sent. Off the event loop: rendering
    is CPU work, sending waits for the third party."""
    session, form = await form_of(request)
    return await run_in_threadpool(_tried, request, session, hook_id, form)


def _tried(request: Request, session: Session, hook_id: str, form: dict[str, str]) -> HTMLResponse:
    service = service_of(request)
    hook = scope.hook(service, session.principal, hook_id)
    types = _types(hook)
    event_type, data = form.get("type", "").strip(), form.get("data", "")
    shown: dict[str, Any] = {"hook": hook, "types": types, "event_type": event_type, "data": data}
    refused = editing.tried(service, hook_id, session.tenant)
    if refused is not None:
        return render(request, "try.html", session, refused.status, error=refused.error, **shown)
    try:
        event = _sample(hook, event_type, data)
    except (ValueError, DecodeError) as exc:
        return render(request, "try.html", session, 422, error=f"sample data: {exc}", **shown)
    tried = trial.prepare(hook, event)
    shown["excluded"] = tried.excluded
    if tried.request is None or tried.shown is None:
        return render(request, "try.html", session, 422, error=str(tried.failure), **shown)
    verdict, not_sent = None, ""
    if form.get("send") == "on":
        sent = trial.send(service.settings, hook, tried)
        if isinstance(sent, trial.NotSent):
            not_sent = sent.reason
        else:
            verdict = sent.as_dict()
    return render(
        request,
        "try.html",
        session,
        request_shown=tried.shown.as_dict(),
        verdict=verdict,
        not_sent=not_sent,
        **shown,
    )


def _types(hook: Hook) -> list[str]:
    """The event types the form offers: the hook's own, else one that each of its patterns
    takes (`order.*`: `order.example`), so that the form's first try is of an event the hook
    takes (one it does not take is never sent)."""
    exact = [e for e in hook.events if GLOB_CHARACTERS.isdisjoint(e)]
    if exact:
        return exact
    made = [(p.replace("*", "example").replace("?", "x"), p) for p in hook.events]
    return [t for t, pattern in made if fnmatchcase(t, pattern)] or ["example.event"]


def _sample(hook: Hook, event_type: str, data: str) -> Event:
    """The event the form describes, of the hook's tenant: the form names none, and a hook of a
    tenant takes only that tenant's events, so its filter alone decides whether it is sent."""
    return Event.from_dict(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "type": event_type,
            "source": "/dugaa/console",
            "time": iso(time.time()),
            "datacontenttype": "application/json",
            "tenant": hook.tenant,
            "data": json.loads(data or "null"),
        }
    )
