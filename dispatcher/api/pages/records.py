"""Event look-up by id, and outcomes per hook filtered by status and time: both from the index."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from dispatcher.api import scope
from dispatcher.api.pages.common import render, service_of, session_of
from dispatcher.api.routes.records import letter_view, moment_of, outcome_view

router = APIRouter(include_in_schema=False)
STATUSES = ("", "delivered", "dead_lettered")


@router.get("/events", response_class=HTMLResponse)
def event_page(request: Request, id: str = "") -> HTMLResponse:
    session = session_of(request)
    event_id = id.strip()
    if not event_id:
        return render(request, "event.html", session, event_id="", searched=False)
    service = service_of(request)
    results, letters = service.index.event(event_id, scope.records(service, session.principal))
    return render(
        request,
        "event.html",
        session,
        event_id=event_id,
        searched=True,
        outcomes=[outcome_view(r) for r in results],
        letters=[letter_view(r) for r in letters],
    )


@router.get("/hooks/{hook_id}/outcomes", response_class=HTMLResponse)
def outcomes_page(
    request: Request, hook_id: str, status: str = "", since: str = "", until: str = ""
) -> HTMLResponse:
    session = session_of(request)
    if status not in STATUSES:
        raise HTTPException(422, "status: delivered or dead_lettered")
    service, caller = service_of(request), session.principal
    scope.named(service, caller, hook_id)
    rows = service.index.outcomes(
        hook_id,
        outcome=status or None,
        since=moment_of(since, "since"),
        until=moment_of(until, "until"),
        limit=200,
        visible=scope.records(service, caller),
    )
    return render(
        request,
        "outcomes.html",
        session,
        hook_id=hook_id,
        outcomes=[outcome_view(r) for r in rows],
        status=status,
        since=since,
        until=until,
        statuses=STATUSES,
    )
