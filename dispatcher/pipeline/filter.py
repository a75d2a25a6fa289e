"""Keep the hooks an event is for: those whose `filter` holds on it. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.conditions import holds


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
