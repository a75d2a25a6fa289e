"""Managing hooks: apply a file to the hook store, delete from it, list and show the hooks in
force. Each returns values; `dispatcher.cli` prints them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError
from dispatcher.hooks.definitions import definitions_in_file, merged
from dispatcher.hooks.loader import load_hooks_file, mode_problems
from dispatcher.kafka.clients import check_reachable
from dispatcher.kafka.store import HookStore, hooks_in_force
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


@dataclass(frozen=True, slots=True)
class Listing:
    """The hooks in force, and the ids of the hooks file's and of the store's hooks (an id in
    both: the stored hook is in force)."""

    hooks: HookIndex
    file_ids: frozenset[str]
    store_ids: frozenset[str]

    def sources(self, ids: set[str]) -> str:
        """Where the hooks `ids` (of those in force) come from, as `hooks list` ends with it."""
        stored = ids & self.store_ids
        over = stored & self.file_ids
        line = f"{len(ids - stored)} from the hooks file, {len(stored)} from the hook store"
        return line + (f" ({len(over)} in place of the hooks file's)" if over else "")


def apply_hooks(settings: Settings, path: str | Path) -> list[str]:
    """Every hook of the file at `path` into the store, or none (`ConfigError` with each
    problem); the ids applied."""
    definitions = definitions_in_file(path, settings.secrets)
    unrunnable = [
        str(problem)
        for i, d in enumerate(definitions)
        for problem in mode_problems(d.raw, f"{path}: hooks[{i}]", settings.consume)
    ]
    if unrunnable:
        raise ConfigError("\n".join(unrunnable))
    _store_configured(settings)
    check_reachable(settings)
    store = HookStore(settings)
    try:
        store.apply(definitions)
    finally:
        store.close()
    return [d.hook.id for d in definitions]


def delete_hook(settings: Settings, hook_id: str) -> None:
    """A tombstone for `hook_id` in the store (`ConfigError` when the store has no such hook)."""
    _store_configured(settings)
    check_reachable(settings)
    store = HookStore(settings)
    try:
        if hook_id not in store.read():
            raise ConfigError(f"no hook {hook_id!r} in the hook store {settings.topics.hooks}")
        store.delete(hook_id)
    finally:
        store.close()


def list_hooks(settings: Settings) -> Listing:
    """The hooks in force: the hooks file's, then the store's."""
    check_reachable(settings)
    file_hooks = load_hooks_file(settings.hooks_file) if settings.hooks_file else []
    stored = HookStore(settings).read() if settings.topics.hooks else {}
    in_file = frozenset(hook.id for hook in file_hooks)
    return Listing(merged(file_hooks, stored), in_file, frozenset(stored))


def hook_in_force(settings: Settings, hook_id: str) -> Hook:
    """The definition of `hook_id` a worker started now would use (`ConfigError` when none)."""
    check_reachable(settings)
    hook = hooks_in_force(settings).get(hook_id)
    if hook is None:
        raise ConfigError(f"no hook {hook_id!r} in {_where_hooks_are(settings)}")
    return hook


def _where_hooks_are(settings: Settings) -> str:
    """Where the hooks in force come from, as a `no hook` error names it."""
    places = [f"the hooks file {settings.hooks_file}" if settings.hooks_file else ""]
    places.append(f"the hook store {settings.topics.hooks}" if settings.topics.hooks else "")
    return " or ".join(filter(None, places)) or "any place (no hooks_file, no hook store)"


def _store_configured(settings: Settings) -> None:
    if not settings.topics.hooks:
        raise ConfigError("topics.hooks is empty: the hook store is switched off")
