"""`admin:`: the admin service's address, tokens (each a role, perhaps a tenant), index and
request bounds. Tokens are kept as written: only `dispatcher admin` resolves them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal

from dispatcher.config.keys import KeyProblem, cidrs, coerce, duration, port
from dispatcher.config.secrets import Secret, is_reference, tenant_key

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # as a hook's `tenant` (hooks.schema.json)


@dataclass(frozen=True, slots=True)
class AdminToken:
    """One entry of `admin.tokens`: the token as written (a `${env:}` / `${file:}` reference,
    or the value itself, kept as a `Secret`), its role, and the tenant it is limited to (None:
    every tenant and the hooks without one). Resolved only by `dispatcher admin`, so a worker
    needs none of the admin's secrets."""

    token: str | Secret
    role: Role
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Admin:
    """`admin:`: the admin service's bind address, tokens, index and request bounds."""

    host: str = "127.0.0.1"
    port: int = 9401
    tokens: tuple[AdminToken, ...] = ()
    data_dir: str = "admin-data"
    retention: float = 7 * 86400.0  # index rows older than this are dropped
    max_records: int = 1_000_000  # and past this many per table, the oldest
    max_body_bytes: int = 1 << 20
    request_timeout: float = 30.0
    session_ttl: float = 8 * 3600.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-Proto / -For are believed: behind
    # a TLS-terminating ingress the session cookie is then Secure. Empty: no header is believed.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # Signs the console's session cookies (a `${env:}`/`${file:}` reference, 32+ characters):
    # sessions then outlive a restart. None: a key made at each start (a restart signs out).
    session_key: str | Secret | None = None


ADMIN_KEYS: dict[str, Any] = {
    "host": str,
    "port": int,
    "data_dir": str,
    "retention": "duration",
    "max_records": int,
    "max_body_bytes": int,
    "request_timeout": "duration",
    "session_ttl": "duration",
}


def read_admin(raw: dict[str, Any]) -> Admin:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = ADMIN_KEYS.get(key)
        if key == "tokens":
            values["tokens"] = _tokens(value)
        elif key == "trusted_proxies":
            values[key] = cidrs(value, f"admin.{key}")
        elif key == "session_key":
            if not isinstance(value, str) or not value.strip():
                raise KeyProblem(
                    "admin.session_key", "must be text (best a ${env:} or ${file:} reference)"
                )
            values[key] = value if is_reference(value) else Secret(value)
        elif kind is None:
            known = ", ".join(sorted([*ADMIN_KEYS, "tokens", "trusted_proxies", "session_key"]))
            raise KeyProblem(f"admin.{key}", f"unknown key (known: {known})")
        elif kind == "duration":
            values[key] = duration(f"admin.{key}", value)
        else:
            values[key] = coerce(f"admin.{key}", value, kind)
    if "port" in values:
        values["port"] = port("admin.port", values["port"])
    for key in ("max_records", "max_body_bytes"):
        if values.get(key, 1) < 1:
            raise KeyProblem(f"admin.{key}", f"must be 1 or more, not {values[key]}")
    return Admin(**values)


def _tokens(raw: Any) -> tuple[AdminToken, ...]:
    if not isinstance(raw, list):
        raise KeyProblem("admin.tokens", "must be a list of {token, role}")
    tokens: list[AdminToken] = []
    for i, entry in enumerate(raw):
        where = f"admin.tokens[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"token", "role", "tenant"}:
            raise KeyProblem("admin.tokens", f"{where}: must be {{token, role[, tenant]}}")
        token, role, tenant = entry.get("token"), entry.get("role"), entry.get("tenant")
        if not isinstance(token, str) or not token.strip():
            raise KeyProblem("admin.tokens", f"{where}.token: missing or empty")
        if role not in ROLES:
            raise KeyProblem("admin.tokens", f"{where}.role: must be viewer or admin")
        if tenant is not None and not (isinstance(tenant, str) and TENANT.fullmatch(tenant)):
            raise KeyProblem(
                "admin.tokens",
                f"{where}.tenant: not a valid tenant (letters, digits, '.', '_', '-'; at most 128)",
            )
        secret = token if is_reference(token) else Secret(token)
        tokens.append(AdminToken(secret, role, tenant))
    _tenants_apart(tokens)
    return tuple(tokens)


def _tenants_apart(tokens: list[AdminToken]) -> None:
    """Refuse two tenants of the tokens that differ only in case or in the characters between
    their letters and digits (`acme-eu`, `Acme.EU`, `acme--eu`): they would share one secret
    prefix (`SecretScope.tenant_prefix`), so each tenant's token could name the other's
    secrets. Tenants whose keys differ have prefixes of which neither begins the other."""
    seen: dict[str, str] = {}
    for token in tokens:
        if token.tenant is None:
            continue
        other = seen.setdefault(tenant_key(token.tenant), token.tenant)
        if other != token.tenant:
            raise KeyProblem(
                "admin.tokens",
                f"tenants {other!r} and {token.tenant!r} would share the secret prefix"
                f" <secrets.env_prefix>{tenant_key(other)}__: tenant names must differ in more"
                " than case and the characters '.', '_', '-'",
            )
