"""/api/hooks/{id}/outcomes, /api/hooks/{id}/attempts, /api/events/{id} and /api/dead-letters:
answered from the index, for a tenant's token only from its rows (`dispatcher.api.scope`)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from dispatcher.api import scope
from dispatcher.api.auth import VIEWER, AsViewer
from dispatcher.api.index.database import Visible
from dispatcher.api.models import (
    DeadLetter,
    DeadLetterCounts,
    Error,
    EventLookup,
    HookAttempts,
    Outcomes,
    Refusal,
)
from dispatcher.api.openapi import UNAUTHORIZED, UNSEEN
from dispatcher.api.routes import service_of
from dispatcher.api.service import AdminService
from dispatcher.model.moments import iso
from dispatcher.ops.replay.selection import parse_moment

router = APIRouter(
    prefix="/api", tags=["records"], dependencies=[Depends(VIEWER)], responses=UNAUTHORIZED
)
Service = Annotated[AdminService, Depends(service_of)]
BAD_TIME: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Refusal,
        "description": "A time that is neither ISO 8601 nor an age, or another value not valid.",
    }
}


def moment_of(text: str | None, name: str) -> float | None:
    """A query's time (ISO 8601 or an age such as `2h`) as epoch seconds; 422 naming it."""
    if text is None or not text.strip():
        return None
    try:
        return parse_moment(text, time.time())
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def outcome_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in row.items() if k != "where"},
        "completed_at": iso(row["completed_at"]),
    }


def letter_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "failed_at": iso(row["failed_at"])}


def attempt_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "where"}, "at": iso(row["at"])}


@router.get(
    "/hooks/{hook_id}/outcomes",
    response_model=Outcomes,
    responses={**BAD_TIME, **UNSEEN},
)
def outcomes(
    hook_id: str,
    service: Service,
    caller: AsViewer,
    status: Literal["delivered", "dead_lettered"] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    """A hook's outcomes, newest first, filtered by status and completion time."""
    scope.named(service, caller, hook_id)
    rows = service.index.outcomes(
        hook_id,
        outcome=status,
        since=moment_of(since, "since"),
        until=moment_of(until, "until"),
        limit=limit,
        visible=scope.records(service, caller),
    )
    return {"hook_id": hook_id, "outcomes": [outcome_view(r) for r in rows]}


@router.get(
    "/hooks/{hook_id}/attempts",
    response_model=HookAttempts,
    responses={**BAD_TIME, **UNSEEN},
)
def hook_attempts(
    hook_id: str,
    service: Service,
    caller: AsViewer,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """A hook's newest attempts, and its attempts counted by status class (2xx ... timeout,
    network) over the index's retention window, or since `since` (ISO 8601 or an age)."""
    scope.named(service, caller, hook_id)
    visible = scope.records(service, caller)
    index = service.index
    return {
        "hook_id": hook_id,
        "status_classes": index.status_classes(hook_id, moment_of(since, "since"), visible),
        "attempts": [attempt_view(r) for r in index.attempts_of_hook(hook_id, limit, visible)],
    }


@router.get("/events/{event_id}", response_model=EventLookup, responses={404: {"model": Error}})
def event(event_id: str, service: Service, caller: AsViewer) -> dict[str, Any]:
    """Every hook's outcome of one event, its dead letters, and every attempt of every hook."""
    found = event_records(service, event_id, scope.records(service, caller))
    if not any(found.values()):
        raise HTTPException(404, f"no outcome of event {event_id!r} in the index")
    return {"event_id": event_id, **found}


def event_records(
    service: AdminService, event_id: str, visible: Visible | None
) -> dict[str, list[dict[str, Any]]]:
    """One event's outcomes, dead letters and attempts as the API and the console show them."""
    results, letters = service.index.event(event_id, visible)
    return {
        "outcomes": [outcome_view(r) for r in results],
        "dead_letters": [letter_view(r) for r in letters],
        "attempts": [attempt_view(r) for r in service.index.attempts_of_event(event_id, visible)],
    }


@router.get("/dead-letters", response_model=DeadLetterCounts, responses=BAD_TIME)
def dead_letter_counts(
    service: Service, caller: AsViewer, since: str | None = None
) -> dict[str, Any]:
    """Dead letters counted by hook and error kind (`since`: ISO 8601 or an age)."""
    by_hook: dict[str, dict[str, int]] = {}
    total = 0
    visible = scope.records(service, caller)
    for group in service.index.letter_groups(moment_of(since, "since"), visible):
        by_hook.setdefault(group["hook_id"] or "(none)", {})[group["error_kind"] or "unknown"] = (
            group["count"]
        )
        total += group["count"]
    return {"total": total, "by_hook": by_hook}


@router.get(
    "/dead-letters/list",
    response_model=list[DeadLetter],
    responses=UNSEEN,
)
def dead_letters(
    service: Service,
    caller: AsViewer,
    hook: str | None = None,
    error_kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The newest dead letters of a hook and error kind."""
    scope.named(service, caller, hook)
    rows = service.index.letters(hook, error_kind, limit, scope.records(service, caller))
    return [letter_view(r) for r in rows]
