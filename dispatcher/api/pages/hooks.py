"""The hooks page: every hook in force with its events, URL (masked), format, state (enabled,
unusable with why, paused or failing for the whole cluster) and health from the index
(deliveries and failure ratio in the last hour, last error, last success); a tenant's session
sees its tenant's hooks only."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dispatcher.api import scope
from dispatcher.api.pages.common import render, service_of, session_of
from dispatcher.hooks.masking import api_key_names, mask_url

router = APIRouter(include_in_schema=False)
HOUR = 3600.0


@router.get("/", response_class=HTMLResponse)
def hooks_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    service = service_of(request)
    caller = session.principal
    health = service.index.health(time.time() - HOUR, scope.records(service, caller))
    decisions = service.decisions()
    rows: list[dict[str, Any]] = []
    for hook in scope.hooks(service, caller):
        seen = health.get(hook.id, {})
        decision = decisions.get(hook.id)
        state = decision.state if decision is not None else "healthy"
        total, failed = int(seen.get("total") or 0), int(seen.get("failed") or 0)
        rows.append(
            {
                "id": hook.id,
                "events": ", ".join(hook.events),
                "url": "-" if hook.stand_in else mask_url(hook.url, api_key_names(hook)[1]),
                "format": "-" if hook.stand_in else hook.format,
                "enabled": hook.enabled,
                "unusable": hook.unusable,
                "paused": state == "paused",
                "failing": state == "failing",
                "since": decision.since if decision is not None else None,
                "reason": decision.reason if decision is not None else None,
                "source": service.source_of(hook.id),
                "deliveries": total,
                "failure_ratio": f"{failed / total:.0%}" if total else "-",
                "last_error": seen.get("last_error"),
                "last_success": seen.get("last_success"),
            }
        )
    return render(request, "hooks.html", session, hooks=rows)
