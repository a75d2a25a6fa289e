"""What a principal may see and change: everything, or, for a token with a `tenant`, only that
tenant's hooks and the outcomes, attempts and dead letters of its events to them, written while
they were its hooks (a record names its hook's tenant as it was then).

A hook of another tenant, and a hook without a tenant (it serves every tenant: the operator's),
is to a tenant's principal as if it did not exist: 404, never 403, so its id does not leak.
"""

from __future__ import annotations

from fastapi import HTTPException

from dispatcher.api.auth import Principal
from dispatcher.api.index.database import Visible
from dispatcher.api.service import AdminService
from dispatcher.model.hook import Hook


def sees(principal: Principal, hook: Hook) -> bool:
    return principal.tenant is None or hook.tenant == principal.tenant


def hooks(service: AdminService, principal: Principal) -> list[Hook]:
    """The hooks in force that `principal` sees."""
    return [hook for hook in service.hooks() if sees(principal, hook)]


def hook(service: AdminService, principal: Principal, hook_id: str) -> Hook:
    """Hook `hook_id` when in force and seen by `principal`; else 404."""
    found = service.hooks().get(hook_id)
    if found is None or not sees(principal, found):
        raise HTTPException(404, f"no hook {hook_id!r}")
    return found


def named(service: AdminService, principal: Principal, hook_id: str | None) -> None:
    """404 when a tenant's principal names a hook it does not see. A principal of every tenant
    may name any id, one no longer in force too (its records stay readable)."""
    if hook_id is not None and principal.tenant is not None:
        hook(service, principal, hook_id)


def not_hidden(service: AdminService, principal: Principal, hook_id: str) -> None:
    """404 when `hook_id` is a hook `principal` does not see (writing a new id is fine)."""
    found = service.hooks().get(hook_id)
    if found is not None and not sees(principal, found):
        raise HTTPException(404, f"no hook {hook_id!r}")


def records(service: AdminService, principal: Principal) -> Visible | None:
    """Which index rows `principal` reads: all (None), or its tenant's, written for a hook of
    its tenant, of the hooks it has now."""
    if principal.tenant is None:
        return None
    return Visible(principal.tenant, frozenset(h.id for h in hooks(service, principal)))
