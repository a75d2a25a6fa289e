"""Try a hook (admin role): an event type and sample data, the exact request it renders (masked
where secret), and, when asked, the response's verdict with the check that failed."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api import editing, scope
from dispatcher.api.pages.common import form_of, render, service_of, session_of
from dispatcher.errors import DecodeError
from dispatcher.model.event import Event
from dispatcher.model.moments import iso
from dispatcher.ops import trial

router = APIRouter(include_in_schema=False)
SAMPLE = '{\n  "order_id": "A-1001"\n}'


@router.get("/hooks/{hook_id}/try", response_class=HTMLResponse)
def try_page(request: Request, hook_id: str) -> HTMLResponse:
    session = session_of(request, "admin")
    hook = scope.hook(service_of(request), session.principal, hook_id)
    types = [e for e in hook.events if "*" not in e] or ["example.event"]
    return render(
        request, "try.html", session, hook=hook, types=types, event_type=types[0], data=SAMPLE
    )


@router.post("/hooks/{hook_id}/try", response_class=HTMLResponse)
async def try_hook(request: Request, hook_id: str) -> HTMLResponse:
    session, form = await form_of(request)
    hook = scope.hook(service_of(request), session.principal, hook_id)
    types = [e for e in hook.events if "*" not in e] or ["example.event"]
    event_type, data = form.get("type", "").strip(), form.get("data", "")
    shown: dict[str, Any] = {"hook": hook, "types": types, "event_type": event_type, "data": data}
    refused = editing.tried(service_of(request), hook_id, session.tenant)
    if refused is not None:
        return render(request, "try.html", session, refused.status, error=refused.error, **shown)
    try:
        event = Event.from_dict(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": event_type,
                "source": "/dugaa/console",
                "time": iso(time.time()),
                "datacontenttype": "application/json",
                "data": json.loads(data or "null"),
            }
        )
    except (ValueError, DecodeError) as exc:
        return render(request, "try.html", session, 422, error=f"sample data: {exc}", **shown)
    tried = trial.prepare(hook, event)
    if tried.request is None or tried.shown is None:
        return render(request, "try.html", session, 422, error=str(tried.failure), **shown)
    verdict = None
    if form.get("send") == "on":
        settings = service_of(request).settings
        sent = await run_in_threadpool(trial.send, settings, hook, tried.request)
        verdict = sent.as_dict()
    return render(
        request, "try.html", session, request_shown=tried.shown.as_dict(), verdict=verdict, **shown
    )
