"""Saving and deleting hooks in the store, for the API and the console alike: the definition is
checked once (`examine`), masked secrets sent back unchanged keep the stored ones, and a change
is confirmed only once this process's follower has read it back (so it is in force). A tenant's
token writes only hooks of its tenant: a definition without `tenant` gets it, another is
refused (`claimed`); and it writes and tries only hooks that reach no further than the tenant
(`beyond_tenant`): no destination guard widened, no secret outside the tenant's prefix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dispatcher.api.service import AdminService
from dispatcher.config.secrets import SecretScope, references_in
from dispatcher.hooks.definitions import Definition, examine, examine_edit
from dispatcher.hooks.loader import Problem, mode_problems, plain
from dispatcher.hooks.numbers import rewritten_numbers
from dispatcher.pipeline.render.paths import format_path

APPLY_WAIT = 10.0
UNSCOPED_ONLY = ("allow_loopback", "allow_private_networks", "allow_cidrs")
SHOWN_ONLY = ("source", "unusable")  # shown with a hook, never stored: a GET put back is fine


@dataclass(frozen=True, slots=True)
class Saved:
    hook_id: str
    created: bool
    in_force: bool


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    error: str
    problems: list[Problem] = field(default_factory=list)


def checked(
    service: AdminService,
    raw: Any,
    *,
    path_id: str | None = None,
    create: bool = False,
    tenant: str | None = None,
) -> Definition | Refused:
    """The definition `raw` as the store would take it from a caller limited to `tenant` (None:
    to none), or why not. The route has already answered 404 for a hook the caller does not
    see. A number read from the body's text (`read_json`) that would be sent other than as
    written is refused (`rewritten_numbers`)."""
    if service.store is None:
        return Refused(409, "the hook store is switched off (topics.hooks is empty)")
    if not isinstance(raw, dict):
        return Refused(422, "a hook definition must be a JSON object")
    rewritten = [Problem("hook", None, format_path(p), m) for p, m in rewritten_numbers(raw)]
    raw = {k: plain(v) for k, v in raw.items() if k not in SHOWN_ONLY}
    if path_id is not None:
        raw = {**raw, "id": raw.get("id", path_id)}
        if raw["id"] != path_id:
            return Refused(422, "the body's id differs from the id in the path")
    hook_id = str(raw.get("id"))
    existing = service.hooks().get(hook_id)
    hidden = tenant is not None and existing is not None and existing.tenant != tenant
    if create and hidden:
        return Refused(409, f"the id {hook_id!r} is taken: choose another")
    if create and existing is not None:
        return Refused(409, f"hook {hook_id!r} exists: PUT /api/hooks/{hook_id} replaces it")
    # a hidden hook's stored secrets must never fill in another's masked values
    previous = None if hidden else service.definition(hook_id)
    result = examine_edit(raw, previous, service.settings.secrets)
    if isinstance(result, list) or rewritten:
        problems = result if isinstance(result, list) else []
        return Refused(422, "invalid hook definition", problems + rewritten)
    return runnable(result, service.settings.consume) or claimed(
        result, tenant, service.settings.secrets
    )


def runnable(definition: Definition, consume: str) -> Refused | None:
    """Why the workers, consuming as `consume` says, could not run `definition` (None: they
    can): the store takes no hook they would only dead-letter."""
    problems = mode_problems(definition.raw, "hook", consume)
    return Refused(422, "the workers cannot run this hook", problems) if problems else None


def claimed(
    definition: Definition, tenant: str | None, secrets: SecretScope | None
) -> Definition | Refused:
    """`definition` as a caller limited to `tenant` may save it: given that tenant when it names
    none; refused when it names another (so no hook moves out of, or into, a tenant), or when
    it reaches beyond the tenant (`beyond_tenant`)."""
    if tenant is not None:
        beyond = beyond_tenant(definition.raw, tenant, secrets or SecretScope())
        if beyond:
            return Refused(422, "a tenant's token writes only hooks within its tenant", beyond)
    named = definition.raw.get("tenant")
    if tenant is None or named == tenant:
        return definition
    if named is None:
        result = examine({**definition.raw, "tenant": tenant}, "hook", secrets)
        return (
            Refused(422, "invalid hook definition", result) if isinstance(result, list) else result
        )
    problem = Problem(
        "hook", None, "tenant", f"must be {tenant!r} (the token's tenant) or left out"
    )
    return Refused(422, "a tenant's token writes only hooks of its tenant", [problem])


def beyond_tenant(raw: dict[str, Any], tenant: str, secrets: SecretScope) -> list[Problem]:
    """Why a definition reaches further than a token limited to `tenant` may take a hook: a
    destination guard setting only an admin of every tenant may set, a secret reference outside
    the tenant's prefix (`SecretScope.tenant_prefix`). The problems name the place and the
    rule, never the reference."""
    problems = [
        Problem("hook", None, key, "only a token of every tenant may set this")
        for key in UNSCOPED_ONLY
        if raw.get(key) not in (None, False, [])
    ]
    prefix = secrets.tenant_prefix(tenant)
    rule = f"a tenant's token may name only secrets ${{env:{prefix}...}} (its tenant's own)"
    for path, text in _texts(raw, ""):
        if any(
            source != "env" or not name.startswith(prefix) for source, name in references_in(text)
        ):
            problems.append(Problem("hook", None, path, rule))
    return problems


def tried(service: AdminService, hook_id: str, tenant: str | None) -> Refused | None:
    """Why a token limited to `tenant` may not try hook `hook_id` (None: it may): the hook,
    as stored, reaches beyond the tenant."""
    if tenant is None:
        return None
    beyond = beyond_tenant(service.definition(hook_id) or {}, tenant, service.settings.secrets)
    if not beyond:
        return None
    told = "; ".join(f"{p.path}: {p.message}" for p in beyond)
    return Refused(422, f"a tenant's token tries only hooks within its tenant ({told})", beyond)


def _texts(tree: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _texts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _texts(value, f"{path}[{i}]")
    elif isinstance(tree, str):
        yield path, tree


def save(service: AdminService, definition: Definition) -> Saved:
    """Write `definition` to the store; whether it is in force here within `APPLY_WAIT`."""
    assert service.store is not None
    assert service.follower is not None
    created = service.hooks().get(definition.hook.id) is None
    in_force = service.follower.wait_for(service.store.apply([definition]), APPLY_WAIT)
    return Saved(definition.hook.id, created, in_force)


def delete(service: AdminService, hook_id: str) -> Refused | None:
    """The store's tombstone for `hook_id`, or why not."""
    if service.store is None or service.follower is None:
        return Refused(409, "the hook store is switched off (topics.hooks is empty)")
    if hook_id not in service.follower.stored:
        if service.hooks().get(hook_id) is not None:
            return Refused(409, f"hook {hook_id!r} is defined in the hooks file, not the store")
        return Refused(404, f"no hook {hook_id!r}")
    service.follower.wait_for(service.store.delete(hook_id), APPLY_WAIT)
    return None
