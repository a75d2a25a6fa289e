"""Consumer lag per partition, from librdkafka's statistics (`statistics.interval.ms`)."""

from __future__ import annotations

import json
from collections.abc import Container

from prometheus_client import Gauge


def record_lag(payload: str, assigned: Container[tuple[str, int]], lag: Gauge) -> None:
    """Set `lag` (labels topic, partition) for each assigned partition the statistics report."""
    try:
        stats = json.loads(payload)
    except ValueError:
        return
    for topic, body in stats.get("topics", {}).items():
        for number, partition in body.get("partitions", {}).items():
            if (topic, int(number)) in assigned and partition.get("consumer_lag", -1) >= 0:
                lag.labels(topic, number).set(partition["consumer_lag"])
