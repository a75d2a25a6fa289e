"""Match an event type to the enabled hooks that subscribe to it (globs allowed)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from dispatcher.model.hook import Hook


class HookIndex:
    """The set of hooks in force, answering `match(event_type)` quickly for exact names."""

    __slots__ = ("_by_id", "_cache", "_exact", "_globbed")

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._by_id: dict[str, Hook] = {}
        self._exact: dict[str, list[Hook]] = {}
        self._globbed: list[tuple[str, Hook]] = []
        self._cache: dict[str, tuple[Hook, ...]] = {}
        for hook in hooks:
            self._by_id[hook.id] = hook
            if not hook.enabled:
                continue
            for pattern in hook.events:
                if any(ch in pattern for ch in "*?["):
                    self._globbed.append((pattern, hook))
                else:
                    self._exact.setdefault(pattern, []).append(hook)

    def match(self, event_type: str) -> tuple[Hook, ...]:
        """The enabled hooks for `event_type`, each once, in definition order."""
        cached = self._cache.get(event_type)
        if cached is not None:
            return cached
        found = {h.id: h for h in self._exact.get(event_type, ())}
        for pattern, hook in self._globbed:
            if fnmatchcase(event_type, pattern):
                found.setdefault(hook.id, hook)
        order = list(self._by_id)
        result = tuple(sorted(found.values(), key=lambda h: order.index(h.id)))
        if len(self._cache) < 10_000:
            self._cache[event_type] = result
        return result

    def get(self, hook_id: str) -> Hook | None:
        return self._by_id.get(hook_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())
