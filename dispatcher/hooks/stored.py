"""The hook store's content as a worker holds it, folded record by record.

A definition that loads is in force as written. One that does not load here (a secret reference
this process cannot resolve, say), or that the workers cannot run as they consume (queue mode: a
hook ordered by key), is in force as unusable: a stand-in whose pairs are dead-lettered as
`config`, never dropped and never left at an older definition. The workers' and the admin
service's follower and a one-off read of the store (`hooks list`, `hooks show`) all fold through
`StoredHooks`, so what the command line shows is what a worker started now would hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from dispatcher.config.secrets import SecretScope
from dispatcher.hooks.definitions import fold, unloadable
from dispatcher.hooks.loader import mode_problems
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook


@dataclass
class StoredHooks:
    """The store's hooks by id, and each one's definition as written (secret references, not
    values); `scope` is what the references may name, `consume` how the workers consume."""

    scope: SecretScope | None = None
    consume: str = "group"
    hooks: dict[str, Hook] = field(default_factory=dict)
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def take(self, record: Record) -> str | None:
        """Apply one store record; what is wrong with it, for the log (None: nothing is)."""
        ignored = fold(self.hooks, record, self.scope)
        if record.key is None:
            return f"ignored a record: {ignored}"
        hook_id = record.key.decode("utf-8", "replace")
        said = None
        if ignored:
            # known but broken: its pairs are dead-lettered, never dropped, until a definition
            # that loads arrives (the same on every worker, whatever it read before)
            before = self.hooks.get(hook_id)
            self.hooks[hook_id] = unloadable(hook_id, record.value, ignored, before)
            said = (
                f"hook {hook_id} does not load here, its pairs are dead-lettered as config until"
                f" a definition that loads is stored: {ignored}"
            )
        self._remember(hook_id, record.value)
        return self._check_mode(hook_id) or said

    def _check_mode(self, hook_id: str) -> str | None:
        """A stored hook the workers cannot run as they consume is in force as unusable: never
        delivered without the order it asks for, and no reason for a worker to refuse to
        start. What to log of it, if so."""
        hook = self.hooks.get(hook_id)
        definition = self.definitions.get(hook_id)
        problems = mode_problems(definition, f"hook {hook_id}", self.consume)
        if hook is None or hook.unusable is not None or not problems:
            return None
        why = "; ".join(p.message for p in problems)
        self.hooks[hook_id] = replace(hook, unusable=why)
        return f"hook {hook_id} cannot run here: {why}; its pairs are dead-lettered"

    def _remember(self, hook_id: str, value: bytes | None) -> None:
        try:
            raw = json.loads(value) if hook_id in self.hooks and value is not None else None
        except ValueError:
            raw = None
        if isinstance(raw, dict):
            self.definitions[hook_id] = raw
        else:
            self.definitions.pop(hook_id, None)
