"""Secret references (`${env:NAME}`, `${file:/path}`) and the masked `Secret` value."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from dispatcher.errors import SecretError

_REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")
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


def is_reference(value: object) -> bool:
    """Whether `value` is written as a secret reference."""
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def resolve(value: str | Secret, *, where: str = "") -> Secret:
    """Turn a literal or a `${env:..}` / `${file:..}` reference into a `Secret`."""
    if isinstance(value, Secret):
        return value
    match = _REFERENCE.match(value)
    if match is None:
        return Secret(value)
    source, name = match.groups()
    place = f"{where}: " if where else ""
    if source == "env":
        if name not in os.environ:
            raise SecretError(f"{place}environment variable {name} is not set")
        return Secret(os.environ[name])
    try:
        return Secret(Path(name).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise SecretError(f"{place}cannot read secret file {name}: {exc.strerror}") from None


def resolve_tree(tree: Any, *, where: str = "") -> Any:
    """Resolve every secret reference found in a nested structure of dicts and lists."""
    if isinstance(tree, dict):
        return {
            k: resolve_tree(v, where=f"{where}.{k}" if where else str(k)) for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [resolve_tree(v, where=f"{where}[{i}]") for i, v in enumerate(tree)]
    if is_reference(tree):
        return resolve(tree, where=where)
    return tree
