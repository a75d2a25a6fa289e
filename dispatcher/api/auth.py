"""Who is asking: the tokens of `admin.tokens`, their roles, and the FastAPI dependencies that
let a request through only with the role an operation needs.

The API takes `Authorization: Bearer <token>`; the console's pages take the session cookie that
the sign-in page hands out (`dispatcher.api.sessions`). Tokens are compared in constant time,
every configured token each time, so neither the answer nor its timing tells how close a guess
came.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from dispatcher.config.secrets import resolve
from dispatcher.config.settings import Admin, Role
from dispatcher.errors import ConfigError

MIN_TOKEN_CHARS = 16
RANK: dict[Role, int] = {"viewer": 0, "admin": 1}


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in caller: its role and how it came in (`bearer` or `session`)."""

    role: Role
    via: str

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


class Tokens:
    """The resolved tokens; `role_of` is the one place a token is compared."""

    def __init__(self, entries: list[tuple[bytes, Role]]) -> None:
        self._entries = entries

    @classmethod
    def from_settings(cls, admin: Admin) -> Tokens:
        """Resolve `admin.tokens`; `ConfigError` when there is none, or one is empty or short."""
        if not admin.tokens:
            raise ConfigError(
                "admin.tokens: at least one token is needed to start the admin service"
            )
        entries: list[tuple[bytes, Role]] = []
        for i, entry in enumerate(admin.tokens):
            where = f"admin.tokens[{i}].token"
            value = resolve(entry.token, where=where).reveal().strip()
            if not value:
                raise ConfigError(f"{where}: the token is empty")
            if len(value) < MIN_TOKEN_CHARS:
                raise ConfigError(f"{where}: too short (at least {MIN_TOKEN_CHARS} characters)")
            entries.append((value.encode(), entry.role))
        return cls(entries)

    def role_of(self, given: str) -> Role | None:
        """The role of token `given`, or None; compares against every token, in constant time."""
        found: Role | None = None
        candidate = given.encode()
        for token, role in self._entries:
            if hmac.compare_digest(candidate, token) and found is None:
                found = role
        return found


def bearer(request: Request) -> Principal | None:
    """The caller of an API request, from its bearer token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    tokens: Tokens = request.app.state.admin.tokens
    role = tokens.role_of(given.strip())
    return None if role is None else Principal(role, "bearer")


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
