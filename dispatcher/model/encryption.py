"""A hook's payload encryption as a frozen value (contract section 4, `encryption`): the
algorithm and the key set, each key resolved into a `Secret` once, at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dispatcher.config.secrets import Secret, SecretScope, resolve


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    """One key of a hook's key set; only `active` keys encrypt."""

    id: str | None
    key: Secret
    state: Literal["active", "decrypt-only"] = "active"


@dataclass(frozen=True, slots=True)
class EncryptionSpec:
    """Payload encryption on top of TLS: the algorithm and the key set."""

    algorithm: str
    keys: tuple[EncryptionKey, ...]

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, where: str = "encryption", scope: SecretScope | None = None
    ) -> EncryptionSpec:
        keys: list[EncryptionKey] = []
        if "key" in raw:
            keys.append(
                EncryptionKey(
                    raw.get("key_id"), resolve(raw["key"], where=f"{where}.key", scope=scope)
                )
            )
        for i, entry in enumerate(raw.get("keys", ())):
            keys.append(
                EncryptionKey(
                    entry.get("id"),
                    resolve(entry["key"], where=f"{where}.keys[{i}].key", scope=scope),
                    entry.get("state", "active"),
                )
            )
        return cls(algorithm=raw["algorithm"], keys=tuple(keys))

    @property
    def active_key(self) -> EncryptionKey:
        return next(k for k in self.keys if k.state == "active")
