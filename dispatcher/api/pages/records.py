"""Event look-up by id (outcomes, dead letters, every attempt), and a hook's page: its outcomes
filtered by status and time, its recent attempts and their status classes (from the index),
and why it cannot be delivered when it is unusable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from dispatcher.api import scope
from dispatcher.api.pages.common import render, service_of, session_of
from dispatcher.api.routes.records import attempt_view, event_records, moment_of, outcome_view

router = APIRouter(include_in_schema=False)
STATUSES = ("", "delivered", "dead_lettered")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "timeout", "network", "cut")


@router.get("/events", response_class=HTMLResponse)
def event_page(request: Request, id: str = "") -> HTMLResponse:
    session = session_of(request)
    event_id = id.strip()
    if not event_id:
        return render(request, "event.html", session, event_id="", searched=False)
    service = service_of(request)
    found = event_records(service, event_id, scope.records(service, session.principal))
    by_hook: dict[str, list[dict[str, Any]]] = {}
    for attempt in found["attempts"]:
        by_hook.setdefault(attempt["hook_id"], []).append(attempt)
    return render(
        request,
        "event.html",
        session,
        event_id=event_id,
        searched=True,
        outcomes=found["outcomes"],
        letters=found["dead_letters"],
        attempts=by_hook,
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
    visible = scope.records(service, caller)
    moments, problems = _filter_times(since, until)
    rows = (
        []
        if problems
        else service.index.outcomes(
            hook_id,
            outcome=status or None,
            since=moments["since"],
            until=moments["until"],
            limit=200,
            visible=visible,
        )
    )
    classes = service.index.status_classes(hook_id, visible=visible)
    in_force = service.hooks().get(hook_id)
    return render(
        request,
        "outcomes.html",
        session,
        422 if problems else 200,
        hook_id=hook_id,
        unusable=in_force.unusable if in_force is not None else None,
        problems=problems,
        outcomes=[outcome_view(r) for r in rows],
        status=status,
        since=since,
        until=until,
        statuses=STATUSES,
        classes=[(name, classes.get(name, 0)) for name in STATUS_CLASSES],
        attempts=[attempt_view(r) for r in service.index.attempts_of_hook(hook_id, 20, visible)],
    )


def _filter_times(since: str, until: str) -> tuple[dict[str, float | None], dict[str, str]]:
    """The filter's times, and the problem of each one that is no time: shown beside its
    field, in the page with the filter to correct, rather than as an error page."""
    moments: dict[str, float | None] = {}
    problems: dict[str, str] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            moments[name] = moment_of(text, name)
        except HTTPException as exc:
            problems[name] = str(exc.detail)
    return moments, problems
