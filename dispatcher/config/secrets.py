"""Secret references (`${env:NAME}`, `${file:/path}`) and the masked `Secret` value.

References in the service's own configuration and hooks file may name any variable or file.
References in hooks from the hook store, which anyone with the admin API's write role can
write, resolve within a `SecretScope` (contract section 2, `secrets:`): variables with its
prefix, files inside its directory (symbolic links followed, then checked). A reference outside
it is refused with the same words whether or not its file or variable exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.errors import SecretError

_REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")
_EMBEDDED = re.compile(r"\$\{(?:env|file):[^}]+\}")
_NOT_IN_A_KEY = re.compile(r"[^A-Z0-9]+")
MASK = "***"


class Secret:
    """A credential or key: masked in repr, str and format; read only through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret's value: the one way it leaves this object."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True)
class SecretScope:
    """What references in hooks from the hook store may name."""

    env_prefix: str = "DISPATCHER_SECRET_"
    dir: str = "/run/secrets"

    def admit(self, source: str, name: str, place: str) -> str:
        """The variable name, or the real path of the file, `${source:name}` may read;
        `SecretError` when the scope does not allow it (saying nothing of what exists)."""
        if source == "env":
            if not self.env_prefix or not name.startswith(self.env_prefix):
                raise SecretError(
                    f"{place}${{env:{name}}} is not allowed: hooks from the hook store may"
                    f" name only variables starting with {self.env_prefix} (secrets.env_prefix)"
                )
            return name
        root = os.path.realpath(self.dir)
        real = os.path.realpath(os.path.join(root, name))  # an absolute `name` stays as it is
        if os.path.commonpath([root, real]) != root or real == root:
            raise SecretError(
                f"{place}${{file:{name}}} is not allowed: hooks from the hook store may name"
                f" only files inside {self.dir} (secrets.dir)"
            )
        return real

    def tenant_prefix(self, tenant: str) -> str:
        """The prefix of the variables that a hook written or tried with a token limited to
        `tenant` may name: `<env_prefix><KEY>__`, KEY the tenant's `tenant_key`
        (`DISPATCHER_SECRET_ACME_EU__` for acme-eu). A KEY neither holds `__` nor ends in `_`,
        so the `__` marks where it ends: no tenant's prefix begins another's (`ACME__` does not
        begin `ACME_EU__`) unless both have one KEY, which the configuration refuses for the
        tenants of its tokens (`config.admin._tenants_apart`). And an operator's own variable
        (`DISPATCHER_SECRET_SMS_TOKEN`) holds no `__`, so it is no tenant's."""
        return f"{self.env_prefix}{tenant_key(tenant)}__"


def tenant_key(tenant: str) -> str:
    """`tenant` as its secrets' names spell it, readable for whoever sets them: upper-cased,
    each run of characters other than A-Z and 0-9 one `_`, none at either end (`acme-eu`,
    `Acme.EU` and `acme--eu` are all ACME_EU)."""
    return _NOT_IN_A_KEY.sub("_", tenant.upper()).strip("_")


def is_reference(value: object) -> bool:
    """Whether `value` is written as a secret reference."""
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def resolve(value: str | Secret, *, where: str = "", scope: SecretScope | None = None) -> Secret:
    """Turn a literal or a `${env:..}` / `${file:..}` reference into a `Secret`; with a `scope`,
    a reference must name what it admits."""
    if isinstance(value, Secret):
        return value
    match = _REFERENCE.match(value)
    if match is None:
        return Secret(value)
    source, name = match.groups()
    place = f"{where}: " if where else ""
    if scope is not None:
        name = scope.admit(source, name, place)
    if source == "env":
        if name not in os.environ:
            raise SecretError(f"{place}environment variable {name} is not set")
        return Secret(os.environ[name])
    try:
        return Secret(Path(name).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise SecretError(f"{place}cannot read secret file {name}: {exc.strerror}") from None


def holds_reference(text: object) -> bool:
    """Whether `text` holds a secret reference anywhere in it (a URL's path or query, say)."""
    return isinstance(text, str) and _EMBEDDED.search(text) is not None


def resolve_within(
    text: str,
    encode: Callable[[str], str],
    *,
    where: str = "",
    scope: SecretScope | None = None,
) -> tuple[Secret, tuple[Secret, ...]]:
    """`text` with each reference in it replaced by its value as `encode` writes it, and the
    values themselves: both `Secret`s."""
    values: list[Secret] = []

    def value(found: re.Match[str]) -> str:
        secret = resolve(found.group(0), where=where, scope=scope)
        values.append(secret)
        return encode(secret.reveal())

    return Secret(_EMBEDDED.sub(value, text)), tuple(values)


def references_in(text: str) -> list[tuple[str, str]]:
    """The source (`env`, `file`) and name of each secret reference in `text`."""
    found = (_REFERENCE.match(m.group(0)) for m in _EMBEDDED.finditer(text))
    return [(m.group(1), m.group(2)) for m in found if m is not None]


def without_references(text: str) -> str:
    """`text` with each reference in it shown as the mask."""
    return _EMBEDDED.sub(MASK, text)


def resolve_tree(tree: Any, *, where: str = "", scope: SecretScope | None = None) -> Any:
    """Resolve every secret reference found in a nested structure of dicts and lists."""
    if isinstance(tree, dict):
        return {
            k: resolve_tree(v, where=f"{where}.{k}" if where else str(k), scope=scope)
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [resolve_tree(v, where=f"{where}[{i}]", scope=scope) for i, v in enumerate(tree)]
    if is_reference(tree):
        return resolve(tree, where=where, scope=scope)
    return tree
