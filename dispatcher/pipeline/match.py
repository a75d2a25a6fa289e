"""Match an event (type and tenant) to the enabled hooks that subscribe to it (globs allowed).

Hooks are indexed by (exact event type, tenant), so an event costs two dictionary look-ups
however many hooks there are; only glob patterns are tested one by one, and only those that can
match (a pattern whose first segment is literal, `order.*`, is tried on `order.` types alone);
answers are cached per (type, tenant). A hook without a tenant sees the events of every tenant; a hook with one
sees only that tenant's; an event without a tenant reaches only hooks without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase

from dispatcher.model.hook import Hook

CACHE_SIZE = 10_000  # (type, tenant) answers kept; the cache starts over when it is full
GLOB_CHARACTERS = frozenset("*?[")


class HookIndex:
    """The set of hooks in force, answering `match(event_type, tenant)` quickly."""

    __slots__ = ("_by_id", "_cache", "_exact", "_globbed", "_position")

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._by_id: dict[str, Hook] = {}
        for hook in hooks:
            self._by_id[hook.id] = hook  # a later definition of an id replaces the earlier one
        self._position = {hook_id: i for i, hook_id in enumerate(self._by_id)}
        self._exact: dict[tuple[str, str | None], list[Hook]] = {}
        self._globbed: dict[str | None, list[tuple[str, Hook]]] = {}
        self._cache: dict[tuple[str, str | None], tuple[Hook, ...]] = {}
        for hook in self._by_id.values():
            if not hook.enabled:
                continue
            for pattern in dict.fromkeys(hook.events):
                if GLOB_CHARACTERS.isdisjoint(pattern):
                    self._exact.setdefault((pattern, hook.tenant), []).append(hook)
                else:
                    self._globbed.setdefault(_first_segment(pattern), []).append((pattern, hook))

    def match(self, event_type: str, tenant: str | None = None) -> tuple[Hook, ...]:
        """The enabled hooks for an event of `event_type` and `tenant`, each once, in
        definition order."""
        key = (event_type, tenant)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = list(self._exact.get((event_type, None), ()))
        if tenant is not None:
            found += self._exact.get(key, ())
        head = event_type.partition(".")[0]
        for bucket in (head, None):
            for pattern, hook in self._globbed.get(bucket, ()):
                if hook.tenant in (None, tenant) and fnmatchcase(event_type, pattern):
                    found.append(hook)
        unique = {hook.id: hook for hook in found}
        result = tuple(sorted(unique.values(), key=lambda h: self._position[h.id]))
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = result
        return result

    def get(self, hook_id: str) -> Hook | None:
        return self._by_id.get(hook_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self._by_id.values())


def _first_segment(pattern: str) -> str | None:
    """The literal first segment every type matching `pattern` starts with (`order` of
    `order.*`), or None when the pattern does not fix one (`*.shipped`, `ord*`)."""
    head, dot, _ = pattern.partition(".")
    return head if dot and GLOB_CHARACTERS.isdisjoint(head) else None
