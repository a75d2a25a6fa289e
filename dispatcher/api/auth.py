"""Who is asking: the tokens of `admin.tokens`, their roles, and the FastAPI dependencies that
let a request through only with the role an operation needs.

The API takes `Authorization: Bearer <token>`; the console's pages take the session cookie that
the sign-in page hands out (`dispatcher.api.sessions`). Tokens are compared in constant time,
every configured token each time, so neither the answer nor its timing tells how close a guess
came. A token with a `tenant` makes a tenant's principal: `dispatcher.api.scope` limits what it
sees and changes to that tenant.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from dispatcher.config.admin import Admin, Role
from dispatcher.config.secrets import resolve
from dispatcher.errors import ConfigError

MIN_TOKEN_CHARS = 16
RANK: dict[Role, int] = {"viewer": 0, "admin": 1}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token grants: a role, limited to one tenant's hooks and records when `tenant`."""

    role: Role
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in caller: its role, how it came in (`bearer` or `session`), and its tenant
    (None: every tenant, and the hooks without one)."""

    role: Role
    via: str
    tenant: str | None = None

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


class Tokens:
    """The resolved tokens; `grant_of` is the one place a token is compared."""

    def __init__(self, entries: list[tuple[bytes, Grant]]) -> None:
        self._entries = entries

    @classmethod
    def from_settings(cls, admin: Admin) -> Tokens:
        """Resolve `admin.tokens`; `ConfigError` when there is none, one is empty or short, or
        two are the same token (it would grant only the first one's role and tenant)."""
        if not admin.tokens:
            raise ConfigError(
                "admin.tokens: at least one token is needed to start the admin service"
            )
        entries: list[tuple[bytes, Grant]] = []
        for i, entry in enumerate(admin.tokens):
            where = f"admin.tokens[{i}].token"
            value = resolve(entry.token, where=where).reveal().strip()
            if not value:
                raise ConfigError(f"{where}: the token is empty")
            if len(value) < MIN_TOKEN_CHARS:
                raise ConfigError(f"{where}: too short (at least {MIN_TOKEN_CHARS} characters)")
            same = next(
                (j for j, (token, _) in enumerate(entries) if token == value.encode()), None
            )
            if same is not None:
                raise ConfigError(
                    f"{where}: the same token as admin.tokens[{same}].token: a token grants one"
                    " role and tenant, so each must differ"
                )
            entries.append((value.encode(), Grant(entry.role, entry.tenant)))
        return cls(entries)

    def granting(self, grant: Grant) -> list[bytes]:
        """The tokens that grant exactly `grant` (for a session's fingerprint check)."""
        return [token for token, granted in self._entries if granted == grant]

    def grant_of(self, given: str) -> Grant | None:
        """What token `given` grants, or None; compares against every token, in constant time."""
        found: Grant | None = None
        candidate = given.encode()
        for token, grant in self._entries:
            if hmac.compare_digest(candidate, token) and found is None:
                found = grant
        return found


def bearer(request: Request) -> Principal | None:
    """The caller of an API request, from its bearer token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    tokens: Tokens = request.app.state.admin.tokens
    grant = tokens.grant_of(given.strip())
    return None if grant is None else Principal(grant.role, "bearer", grant.tenant)


def api_caller(role: Role) -> Callable[[Request], Principal]:
    """A dependency: the bearer's principal when it has `role` or more; else 401 or 403."""

    def check(request: Request) -> Principal:
        principal = bearer(request)
        if principal is None:
            raise HTTPException(
                401,
                "needs Authorization: Bearer <token> (a token of admin.tokens)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.may(role):
            raise HTTPException(403, f"needs the {role} role")
        return principal

    return check


VIEWER = api_caller("viewer")
ADMIN = api_caller("admin")
AsViewer = Annotated[Principal, Depends(VIEWER)]
AsAdmin = Annotated[Principal, Depends(ADMIN)]
