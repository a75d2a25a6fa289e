"""Consumer lag from librdkafka's statistics: assigned partitions only, unknown lag skipped."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from dispatcher.engine.lag import record_lag
from dispatcher.metrics import Metrics


def test_lag_is_set_for_assigned_partitions_with_a_known_lag() -> None:
    metrics = Metrics(CollectorRegistry())
    stats = {
        "topics": {
            "events": {
                "partitions": {
                    "0": {"consumer_lag": 42},
                    "1": {"consumer_lag": -1},  # not known yet
                    "2": {"consumer_lag": 7},  # not ours
                    "-1": {"consumer_lag": 0},  # librdkafka's internal UA partition
                }
            }
        }
    }
    record_lag(json.dumps(stats), {("events", 0), ("events", 1)}, metrics.consumer_lag)
    registry = metrics.registry
    assert (
        registry.get_sample_value("dispatcher_consumer_lag", {"topic": "events", "partition": "0"})
        == 42
    )
    for partition in ("1", "2", "-1"):
        labels = {"topic": "events", "partition": partition}
        assert registry.get_sample_value("dispatcher_consumer_lag", labels) is None


def test_statistics_that_are_not_json_are_ignored() -> None:
    metrics = Metrics(CollectorRegistry())
    record_lag("{not json", {("events", 0)}, metrics.consumer_lag)
