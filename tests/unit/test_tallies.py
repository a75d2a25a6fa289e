"""The delivery loop's tallies export what prometheus_client's own metrics would, sample for
sample, for the same observations, in the text format and in OpenMetrics."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from dispatcher.metrics import EVENT_TO_DELIVERY_BUCKETS, LATENCY_BUCKETS, Metrics
from dispatcher.metrics.tallies import HistogramFamily, Spread

FAMILIES = (
    "dispatcher_delivery_attempts",
    "dispatcher_delivery_duration_seconds",
    "dispatcher_event_to_delivery_seconds",
    "dispatcher_inflight_deliveries",
)
# on a bound, just past one, between, past the last, zero
VALUES = (0.0, 0.005, 0.0051, 0.3, 1.0, 60.0, 61.0, 5.0, 86400.0, 1e9)


Exposition = Callable[[CollectorRegistry], bytes]


def _exposition(registry: CollectorRegistry, generate: Exposition = generate_latest) -> list[str]:
    """The lines of the four families, their `_created` times left out (made at other times)."""
    lines = [
        line
        for line in generate(registry).decode().splitlines()
        if any(name in line for name in FAMILIES)
    ]
    return [re.sub(r"_created(\{.*\})? .*", r"_created\1", line) for line in lines]


def _native() -> tuple[CollectorRegistry, Counter, Histogram, Histogram, Gauge]:
    registry = CollectorRegistry()
    return (
        registry,
        Counter(FAMILIES[0], "HTTP delivery attempts by result class.", ["hook", "result"],
                registry=registry),
        Histogram(FAMILIES[1], "Duration of one HTTP attempt.", ["hook"],
                  buckets=LATENCY_BUCKETS, registry=registry),
        Histogram(FAMILIES[2], "From the event's Kafka timestamp to its successful delivery.",
                  ["hook"], buckets=EVENT_TO_DELIVERY_BUCKETS, registry=registry),
        Gauge(FAMILIES[3], "HTTP requests in flight.", ["hook"], registry=registry),
    )  # fmt: skip


@pytest.mark.parametrize("generate", [generate_latest, openmetrics_latest])
def test_the_tallies_export_what_prometheus_client_would(generate: Exposition) -> None:
    registry, attempts, duration, to_delivery, inflight = _native()
    metrics = Metrics(CollectorRegistry())
    for hook in ("sms-ke", "erp"):
        mine = metrics.hook(hook)
        for value in VALUES:
            duration.labels(hook).observe(value)
            mine.duration.observe(value)
            to_delivery.labels(hook).observe(value)
            mine.event_to_delivery.observe(value)
        for result in ("2xx", "5xx", "2xx", "timeout"):
            attempts.labels(hook, result).inc()
            mine.attempts(result).inc()
        inflight.labels(hook).inc(3)
        inflight.labels(hook).dec()
        mine.inflight.inc(3)
        mine.inflight.dec()
    ours = _exposition(metrics.registry, generate)
    assert len(ours) > 60
    assert ours == _exposition(registry, generate)


def test_a_sample_reads_as_a_registry_reads_any_other() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.hook("sms-ke").attempts("2xx").inc()
    metrics.hook("sms-ke").duration.observe(0.2)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("dispatcher_delivery_attempts_total", hook="sms-ke", result="2xx") == 1
    assert sample("dispatcher_delivery_duration_seconds_count", hook="sms-ke") == 1
    assert sample("dispatcher_delivery_duration_seconds_bucket", hook="sms-ke", le="0.1") == 0
    assert sample("dispatcher_delivery_duration_seconds_bucket", hook="sms-ke", le="0.25") == 1
    assert sample("dispatcher_delivery_duration_seconds_sum", hook="sms-ke") == pytest.approx(0.2)
    assert sample("dispatcher_delivery_duration_seconds_created", hook="sms-ke") is not None


def test_a_family_name_is_registered_once() -> None:
    metrics = Metrics(CollectorRegistry())
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Histogram(FAMILIES[1], "again", ["hook"], registry=metrics.registry)


@pytest.mark.parametrize("value", [-1.0, 0.0, 0.01, 0.0100001, 86400.0, math.inf])
def test_a_value_counts_in_the_first_bucket_whose_bound_it_does_not_pass(value: float) -> None:
    spread = Spread(HistogramFamily("x", "x", (), EVENT_TO_DELIVERY_BUCKETS).bounds)
    spread.observe(value)
    (index,) = [i for i, count in enumerate(spread.counts) if count]
    bounds = [*EVENT_TO_DELIVERY_BUCKETS, math.inf]
    assert value <= bounds[index]
    assert index == 0 or value > bounds[index - 1]
