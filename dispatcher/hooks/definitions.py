"""Hook definitions on their way into the hook store, checked once; the hooks in force.

The store holds secret *references* only (`${env:NAME}`, `${file:/path}`): a literal secret is
refused, as the contract keeps secrets out of every topic. Its references may name only what the
service's `secrets:` scope admits (a `SecretScope`), on the way in and when a worker reads them. A `Definition` is what passed the
checks; the store writes only those, and a worker folds the store's records through the same
checks, so a definition is validated once on each way in.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dispatcher.config.secrets import SecretScope, is_reference
from dispatcher.errors import ConfigError, DispatcherError
from dispatcher.hooks.loader import (
    Problem,
    definition_problems,
    plain,
    validate_hooks_text,
)
from dispatcher.hooks.masking import looks_sensitive
from dispatcher.hooks.shape import shape_problem
from dispatcher.hooks.unmasking import keep_masked, masks_left
from dispatcher.model.auth import SECRET_AUTH_KEYS
from dispatcher.model.condition import Condition
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex
from dispatcher.pipeline.render.paths import format_path


@dataclass(frozen=True, slots=True)
class Definition:
    """A definition the store may hold: its JSON-ready form and the hook it defines. Made only
    by the checks below, so whoever holds one need not check it again."""

    raw: dict[str, Any]
    hook: Hook


def examine(raw: Any, where: str, scope: SecretScope | None = None) -> Definition | list[Problem]:
    """The checked definition, or every reason the store refuses `raw`; each check runs once.
    `scope`: what its references may name (None only where the caller has no settings)."""
    too_large = too_large_to_check(raw, where)
    if too_large:
        return too_large
    problems = definition_problems(raw, where, scope=scope) + literal_secrets(raw, where)
    errors = [p for p in problems if not p.warning]
    return errors or _defined(raw, where, scope)


def too_large_to_check(raw: Any, where: str) -> list[Problem]:
    """The problem of a definition nested too deeply for the checks to walk (`shape`)."""
    why = shape_problem(raw)
    return [] if why is None else [Problem(where, None, "", f"the definition {why}")]


def examine_text(
    text: str, previous: dict[str, Any] | None = None, scope: SecretScope | None = None
) -> Definition | list[Problem]:
    """One definition written as YAML (the console's editor), checked as `examine` checks it,
    each problem with its line in `text`. Values shown masked and sent back unchanged take
    `previous`'s (the stored definition), so a masked secret is never saved as the mask."""
    wrapped = "hooks:\n  -\n" + textwrap.indent(text, "    ")
    problems = [_unwrapped(p) for p in validate_hooks_text(wrapped, "hook") if not p.warning]
    raw = None if problems and problems[0].path == "" else _first_hook(wrapped)
    if problems and raw is not None and previous:
        # a masked value is checked once restored (below), not as the mask it was sent as
        restored = _differences(raw, keep_masked(raw, previous))
        problems = [p for p in problems if p.path not in restored]
    if problems or raw is None:
        return problems
    return examine_edit(raw, previous, scope)


def _first_hook(wrapped: str) -> dict[str, Any] | None:
    try:
        hooks = plain(YAML(typ="rt", pure=True).load(wrapped))["hooks"]
    except (YAMLError, TypeError, KeyError):
        return None
    return hooks[0] if isinstance(hooks, list) and hooks and isinstance(hooks[0], dict) else None


def _differences(a: Any, b: Any, path: tuple[str | int, ...] = ()) -> set[str]:
    """The paths (as problems name them) where `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {d for k in a.keys() & b.keys() for d in _differences(a[k], b[k], (*path, k))}
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, (*path, i))
        }
    return set() if a == b else {format_path(path)}


def examine_edit(
    raw: dict[str, Any], previous: dict[str, Any] | None, scope: SecretScope | None = None
) -> Definition | list[Problem]:
    """An edit of a definition shown masked (`previous`: the stored one, None for a new hook),
    checked as `examine` checks it once each `***` sent back unchanged has its stored value
    back; a `***` standing for nothing stored is a problem, never saved."""
    too_large = too_large_to_check(raw, "hook")
    if too_large:
        return too_large
    kept = keep_masked(raw, previous) if previous else raw
    left = [Problem("hook", None, path, message) for path, message in masks_left(kept, previous)]
    return left or examine(kept, "hook", scope)


def _unwrapped(problem: Problem) -> Problem:
    """A problem of the wrapped text, told in the lines and paths of the editor's text."""
    line = problem.line - 2 if problem.line and problem.line > 2 else problem.line
    path = problem.path.removeprefix("hooks[0]").removeprefix(".")
    return Problem("hook", line, path, problem.message, problem.warning)


def refusals(raw: Any, where: str, scope: SecretScope | None = None) -> list[Problem]:
    """Why the store would refuse definition `raw` (none: it takes it)."""
    checked = examine(raw, where, scope)
    return checked if isinstance(checked, list) else []


def check_definition(raw: Any, where: str, scope: SecretScope | None = None) -> Definition:
    """The definition, if the store may hold it; else `ConfigError` listing every problem."""
    checked = examine(raw, where, scope)
    if isinstance(checked, list):
        raise ConfigError("\n".join(str(p) for p in checked))
    return checked


def _defined(
    raw: dict[str, Any], where: str, scope: SecretScope | None
) -> Definition | list[Problem]:
    try:
        return Definition(raw, Hook.from_dict(raw, where=where, scope=scope))
    except (DispatcherError, ValueError, KeyError, TypeError) as exc:
        return [Problem(where, None, "", f"{where}: {exc}")]


def literal_secrets(raw: Any, where: str) -> list[Problem]:
    """Secrets written as values rather than references: the store refuses to hold them."""
    if not isinstance(raw, dict):
        return []
    places: list[tuple[str, Any]] = []
    auth = raw.get("auth")
    if isinstance(auth, dict):
        for name in SECRET_AUTH_KEYS.get(str(auth.get("type")), ()):
            values = auth.get(name)
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                suffix = f"[{i}]" if isinstance(values, list) else ""
                places.append((f"auth.{name}{suffix}", value))
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        places.append(("encryption.key", encryption.get("key")))
        keys = encryption.get("keys")
        for i, entry in enumerate(keys if isinstance(keys, list) else []):
            if isinstance(entry, dict):
                places.append((f"encryption.keys[{i}].key", entry.get("key")))
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if looks_sensitive(str(name)):
            places.append((f"headers.{name}", value))
    url = raw.get("url")
    query = urlsplit(url).query if isinstance(url, str) else ""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if looks_sensitive(name) and value:
            places.append((f"url ({name}=)", value))
    message = "the hook store holds secret references only: write ${env:NAME} or ${file:/path}"
    return [
        Problem(where, None, path, message)
        for path, value in places
        if isinstance(value, str) and not is_reference(value)
    ]


def definitions_in_file(path: str | Path, scope: SecretScope | None = None) -> list[Definition]:
    """The definitions of a hooks file, each one fit for the store; else every problem at once.

    The file is validated as a whole (with line numbers); each definition is then only searched
    for literal secrets and built."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read hooks file: {exc}") from None
    problems = [p for p in validate_hooks_text(text, str(path)) if not p.warning]
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))
    raws: list[dict[str, Any]] = plain(YAML(typ="rt", pure=True).load(text))["hooks"]
    found: list[Definition] = []
    errors: list[str] = []
    for i, raw in enumerate(raws):
        where = f"{path}: hooks[{i}]"
        checked = literal_secrets(raw, where) or _scoped(raw, where, scope)
        if isinstance(checked, list):
            errors += [str(p) for p in checked]
        else:
            found.append(checked)
    if errors:
        raise ConfigError("\n".join(errors))
    return found


def _scoped(
    raw: dict[str, Any], where: str, scope: SecretScope | None
) -> Definition | list[Problem]:
    """The definition, its references checked against `scope` (the file was validated whole)."""
    if scope is not None:
        found = definition_problems(raw, where, scope=scope)
        errors = [p for p in found if not p.warning]
        if errors:
            return errors
    return _defined(raw, where, scope)


def fold(stored: dict[str, Hook], record: Record, scope: SecretScope | None = None) -> str | None:
    """Apply one store record to `stored`; the reason it was ignored, or None when applied."""
    if record.key is None:
        return "record without a key"
    hook_id = record.key.decode("utf-8", "replace")
    if record.value is None:
        stored.pop(hook_id, None)
        return None
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    try:
        raw = json.loads(record.value)
        if not isinstance(raw, dict) or raw.get("id") != hook_id:
            return f"{where}: the definition's id is not its key {hook_id!r}"
        stored[hook_id] = check_definition(raw, where, scope).hook
    except ValueError:
        return f"{where}: not JSON"
    except ConfigError as exc:
        return str(exc)
    return None


def unloadable(
    hook_id: str, value: bytes | None, reason: str, previous: Hook | None = None
) -> Hook:
    """The stand-in of a stored definition of `hook_id` this worker cannot load (`reason`, from
    `fold`: a secret reference it cannot resolve, say): it takes the events the definition
    names, as far as they can be read (its filter only if that loads too: rather a dead letter
    too many than an event gone without one); when it names none, those of `previous`, the
    definition it replaces here, if any. It is unusable, so its pairs are dead-lettered as
    `config` until a definition that loads is stored. It holds nothing else of the
    definition: no URL, no credentials."""
    try:
        raw = json.loads(value) if value is not None else {}
    except ValueError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    events = raw.get("events")
    tenant = raw.get("tenant")
    try:
        conditions = tuple(Condition.from_dict(c) for c in raw.get("filter") or ())
    except (DispatcherError, ValueError, KeyError, TypeError, AttributeError):
        conditions = ()
    named = tuple(e for e in events if isinstance(e, str)) if isinstance(events, list) else ()
    matching = (named, tenant if isinstance(tenant, str) else None, conditions)
    if not named and previous is not None:
        matching = (previous.events, previous.tenant, previous.filter)
    return Hook(
        id=hook_id,
        events=matching[0],
        url="",
        tenant=matching[1],
        filter=matching[2],
        enabled=raw.get("enabled", True) is not False,
        unusable=f"its stored definition does not load on this worker: {reason}",
    )


def merged(base: Iterable[Hook], stored: Mapping[str, Hook]) -> HookIndex:
    """The hooks in force: the file's, each replaced by the store's definition of the same id,
    then the store's own (by id)."""
    file_hooks = list(base)
    ids = {hook.id for hook in file_hooks}
    extra = [stored[i] for i in sorted(stored) if i not in ids]
    return HookIndex([stored.get(h.id, h) for h in file_hooks] + extra)
