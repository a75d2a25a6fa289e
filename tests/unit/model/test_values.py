"""`quick_init`: the same values as the dataclass's own `__init__`, still frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from dispatcher.model.event import Event, Record
from dispatcher.model.outcome import Outcome, Source
from dispatcher.model.pair import Pair
from dispatcher.model.request import Request
from dispatcher.model.values import quick_init


@dataclass(frozen=True, slots=True)
class Reference:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: tuple[int, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: tuple[int, ...] = ()


CALLS = [
    ((1,), {}),
    ((1, "x"), {}),
    ((1,), {"c": [2]}),
    ((), {"a": 1, "d": (3,)}),
    ((1, "x", [4], (5,)), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_it_makes_the_values_the_dataclass_makes(args: tuple, kwargs: dict) -> None:  # type: ignore[type-arg]
    assert dataclasses.astuple(Quick(*args, **kwargs)) == dataclasses.astuple(
        Reference(*args, **kwargs)
    )


def test_each_value_gets_a_new_default_from_its_factory() -> None:
    assert Quick(1).c is not Quick(1).c


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1,), {"e": 2}), ((1, "x", [], (), 5), {}), ((1,), {"a": 1})],
    ids=["missing", "unknown", "too-many", "twice"],
)
def test_it_refuses_the_calls_the_dataclass_refuses(args: tuple, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(TypeError):
        Reference(*args, **kwargs)
    with pytest.raises(TypeError):
        Quick(*args, **kwargs)


def test_the_values_stay_frozen_equal_and_replaceable() -> None:
    value = Quick(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 2  # type: ignore[misc]
    assert value == Quick(1)
    assert dataclasses.replace(value, b="y") == Quick(1, "y")


def test_the_models_on_the_delivery_path_are_quick_and_frozen() -> None:
    record = Record("t", 0, 1, None, b"{}", ())
    event = Event("e", "x", "/s")
    source = Source("t", 0, 1)
    values = [record, event, source, Request("POST", "https://h.example/", (), b"")]
    values.append(Pair(record, event, object(), source, "m"))  # type: ignore[arg-type]
    values.append(
        Outcome("e", "x", "h", "delivered", 1, "m", source, first_attempt_at=1.0, completed_at=2.0)
    )
    for value in values:
        assert "__create_fn__" not in type(value).__init__.__code__.co_qualname  # quick_init
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.__setattr__(dataclasses.fields(value)[0].name, None)


@pytest.mark.parametrize("options", [{"frozen": False, "slots": True}, {"frozen": True}])
def test_it_refuses_a_class_that_is_not_frozen_with_slots(options: dict) -> None:  # type: ignore[type-arg]
    cls = dataclass(**options)(type("Plain", (), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError, match="frozen dataclass with slots"):
        quick_init(cls)


def test_it_refuses_a_class_with_post_init_or_keyword_only_fields() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Named:
        a: int

    with pytest.raises(TypeError, match="__post_init__"):
        quick_init(Checked)
    with pytest.raises(TypeError, match="positional"):
        quick_init(Named)
