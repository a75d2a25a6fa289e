"""Metrics bumped on every delivery by the delivery loop alone: plain numbers, no lock.

prometheus_client's own metrics take a lock, check their labels and, for a histogram, walk its
buckets in Python on every call. The four families `Deliverer` bumps on every attempt cost 6%
of the delivery loop's instructions that way (callgrind, 2,000 deliveries of scenario 1's hook).
Here a family's children are plain numbers, each written by one thread only (the event loop
that runs the hook's deliveries), and read by the exposition at scrape time through a
collector, as prometheus_client reads its own: the samples and their names are the same.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

_go = cast(Callable[[float], str], floatToGoString)  # untyped in prometheus_client


class Tally:
    """A counter's or a gauge's value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class Spread:
    """A histogram's value: a count per bucket (the last one past every bound) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value: `le`
        self.sum += value


Child = TypeVar("Child", Tally, Spread)


class _Family(Generic[Child]):
    """One family's children by label values, with the time each was made (`_created`)."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._children: dict[tuple[str, ...], tuple[Child, float]] = {}

    def labels(self, *values: str) -> Child:
        """The child of `values`, made on first use (ask once, keep it: a look-up a call)."""
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = (self._new(), time.time())
        return found[0]

    def _new(self) -> Child:
        raise NotImplementedError

    def children(self) -> list[tuple[tuple[str, ...], Child, float]]:
        """A copy: the loop may add a child while a scrape reads them (`list` copies the items
        in one call, which no other thread's insertion can interrupt)."""
        return [
            (values, child, created) for values, (child, created) in list(self._children.items())
        ]

    def family(self) -> Metric:
        raise NotImplementedError


class CounterFamily(_Family[Tally]):
    def _new(self) -> Tally:
        return Tally()

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child, created in self.children():
            family.add_metric(values, child.value, created=created)
        return family


class GaugeFamily(_Family[Tally]):
    def _new(self) -> Tally:
        return Tally()

    def family(self) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child, _created in self.children():
            family.add_metric(values, child.value)
        return family


class HistogramFamily(_Family[Spread]):
    def __init__(
        self, name: str, documentation: str, labelnames: tuple[str, ...], bounds: tuple[float, ...]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(float(b) for b in bounds)
        self._le = [_go(b) for b in self.bounds] + ["+Inf"]  # as prometheus_client writes `le`

    def _new(self) -> Spread:
        return Spread(self.bounds)

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child, created in self.children():
            cumulative, buckets = 0, []
            for le, count in zip(self._le, list(child.counts), strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(values, buckets, child.sum)
            labels = dict(zip(self.labelnames, values, strict=True))
            family.add_sample(f"{self.name}_created", labels, created)
        return family


class Tallies:
    """A collector of tally families, registered on `registry` (`families` in its order)."""

    def __init__(self, registry: CollectorRegistry, *families: _Family[Tally] | _Family[Spread]):
        self.families = families
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.family()

    def describe(self) -> list[Metric]:
        """The families as they are at `register` (no samples yet): their names are checked."""
        return [family.family() for family in self.families]
