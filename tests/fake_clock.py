"""A clock that moves only when the test moves it: for whatever takes a `clock=` callable."""

from __future__ import annotations


class Clock:
    """Returns `now` when called; the test sets it, or moves it on with `advance`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
