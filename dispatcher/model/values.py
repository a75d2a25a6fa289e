"""`quick_init`: a frozen, slotted dataclass built at the cost of a plain one.

A frozen dataclass's `__init__` sets each field with `object.__setattr__(self, name, value)`,
a look-up and a call with a name per field, since its own `__setattr__` refuses. A delivery
builds a dozen such values (the event, its pair, request, response, verdict, attempt, outcome,
records...), about 90 fields, and those calls were ~5 us of it. On a slotted class each field
is a member descriptor, whose `__set__` stores the value directly: `quick_init` gives the class
an `__init__` that calls those, the same parameters, defaults and factories as the one it
replaces. The class stays frozen: assignment after `__init__` still raises.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give `cls`, a `@dataclass(frozen=True, slots=True)` class, a faster `__init__` that
    behaves as its own (positional and keyword arguments, defaults, default factories)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__: keep the dataclass's __init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    expected = list(inspect.signature(cls.__init__).parameters)[1:]
    if [f.name for f in fields] != expected or any(f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__}: only positional fields, each in __init__, are supported")
    names: dict[str, Any] = {"MISSING": dataclasses.MISSING}
    parameters, lines = [], []
    for i, field in enumerate(fields):
        names[f"set_{i}"] = cls.__dict__[field.name].__set__
        value = field.name
        if field.default is not dataclasses.MISSING:
            names[f"default_{i}"] = field.default
            parameters.append(f"{field.name}=default_{i}")
        elif field.default_factory is not dataclasses.MISSING:
            names[f"factory_{i}"] = field.default_factory
            parameters.append(f"{field.name}=MISSING")
            value = f"factory_{i}() if {field.name} is MISSING else {field.name}"
        else:
            parameters.append(field.name)
        lines.append(f"    set_{i}(self, {value})\n")
    source = f"def __init__(self, {', '.join(parameters)}):\n{''.join(lines) or '    pass'}\n"
    exec(source, names)  # noqa: S102 - the text is made above, of the class's own field names
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
