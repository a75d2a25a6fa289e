"""A condition on a document: a path and the operators that must hold there (hook `filter`,
`response.expect`). Built once by `Condition.from_dict`; `pipeline/conditions.py` evaluates it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Operator = Literal[
    "exists", "equals", "not_equals", "in", "not_in", "matches", "gt", "gte", "lt", "lte"
]
OPERATORS: tuple[Operator, ...] = get_args(Operator)  # in the order they are checked
ORDERING: frozenset[Operator] = frozenset(("gt", "gte", "lt", "lte"))


@dataclass(frozen=True, slots=True)
class Condition:
    """`path` and its (operator, operand) tests; every test must hold."""

    path: str = ""  # "" or ".": the whole document
    tests: tuple[tuple[Operator, Any], ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Condition:
        tests = tuple(
            (name, tuple(raw[name]) if name in ("in", "not_in") else raw[name])
            for name in OPERATORS
            if name in raw
        )
        return cls(path=str(raw.get("path", "")), tests=tests)

    def to_dict(self) -> dict[str, Any]:
        """The condition as written in a hooks file."""
        out: dict[str, Any] = {"path": self.path}
        for name, operand in self.tests:
            out[name] = list(operand) if isinstance(operand, tuple) else operand
        return out
