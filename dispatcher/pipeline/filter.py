"""Keep the hooks an event is for: those whose `filter` holds on it. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.conditions import failures, holds


def admit(hooks: Iterable[Hook], event: Event) -> tuple[list[Hook], list[str]]:
    """The hooks whose filter `event` passes, and the ids of those whose filter it fails."""
    admitted: list[Hook] = []
    filtered: list[str] = []
    document = None
    for hook in hooks:
        if hook.filter:
            if document is None:
                document = event.attributes()
            if not holds(hook.filter, document):
                filtered.append(hook.id)
                continue
        admitted.append(hook)
    return admitted, filtered


def exclusions(hook: Hook, event: Event) -> list[str]:
    """Why `event` is not for `hook` (its type, its tenant, then each failed filter condition);
    empty when it is. Matching and `admit` decide the same, faster; this one explains."""
    found: list[str] = []
    if not any(fnmatchcase(event.type, pattern) for pattern in hook.events):
        taken = ", ".join(hook.events)
        found.append(f"the hook takes events of type {taken}; the event has type {event.type!r}")
    if hook.tenant is not None and event.tenant != hook.tenant:
        tenant = "no tenant" if event.tenant is None else f"tenant {event.tenant!r}"
        found.append(f"the hook serves tenant {hook.tenant!r}; the event has {tenant}")
    if hook.filter:
        found += (f"filter: {message}" for message in failures(hook.filter, event.attributes()))
    return found
