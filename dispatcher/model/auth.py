"""A hook's credentials as a frozen value (contract section 4, `auth`): the type and its
settings, each secret among them resolved into a `Secret` once, at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatcher.config.secrets import SecretScope, resolve, resolve_tree


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """Credentials: `type` and its settings, secrets already resolved into `Secret` values."""

    type: str = "none"
    settings: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any] | None,
        *,
        where: str = "auth",
        scope: SecretScope | None = None,
    ) -> AuthSpec:
        raw = dict(raw or {"type": "none"})
        kind = raw.pop("type", "none")
        resolved = resolve_tree(raw, where=where, scope=scope)
        for name in SECRET_AUTH_KEYS.get(kind, ()):
            value = resolved.get(name)
            if isinstance(value, str):
                resolved[name] = resolve(value, where=f"{where}.{name}", scope=scope)
            elif isinstance(value, list):
                resolved[name] = [resolve(v, where=f"{where}.{name}", scope=scope) for v in value]
        return cls(type=kind, settings=tuple(resolved.items()))

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self.settings:
            if key == name:
                return value
        return default


SECRET_AUTH_KEYS: dict[str, tuple[str, ...]] = {
    "basic": ("password",),
    "bearer": ("token",),
    "api_key": ("value",),
    "oauth2_client_credentials": ("client_secret",),
    "hmac": ("secret", "secrets"),
    "mtls": ("password",),  # an encrypted client key's passphrase
}
