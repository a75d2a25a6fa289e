"""Write attempt records to the attempts topic: batched with the outcomes on the worker's
producer, never waited for, and dropped (counted) rather than ever holding up a delivery.

Attempt records are observability, not part of the commit rule: an offset is committed when the
pair's outcome is acknowledged, whether or not its attempt records are. So a full queue drops
the record at once, a record Kafka refuses is not produced again, and at most `MAX_PENDING`
of them wait for acknowledgement, so they never take the outcome records' room in the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaException

from dispatcher.metrics import Metrics
from dispatcher.model.attempt import AttemptRecord

log = logging.getLogger(__name__)
MAX_PENDING = 50_000  # a quarter of the producer's queue (`queue.buffering.max.messages`)
LOG_EVERY = 60.0  # seconds between two warnings about dropped records


class AttemptWriter:
    """Produces attempt records to `topic`, keyed by event id (an event's attempts stay in one
    partition, in order). `write` runs on the delivery loop; acknowledgements arrive on the
    thread that polls the producer."""

    def __init__(self, producer: Any, topic: str, metrics: Metrics) -> None:
        self.producer = producer
        self.topic = topic
        self._full = metrics.attempt_records_dropped.labels("queue_full")
        self._failed = metrics.attempt_records_dropped.labels("failed")
        self._produced = 0  # written only by the delivery loop's thread
        self._settled = 0  # written only by the polling thread (acknowledged or refused)
        self._dropped = 0
        self._told = 0.0
        self._lock = threading.Lock()  # the two threads' drop count and warning

    @property
    def pending(self) -> int:
        """Records produced and not yet acknowledged or refused."""
        return self._produced - self._settled

    def write(self, record: AttemptRecord) -> None:
        """Hand `record` to the producer, or drop it (counted) when there is no room."""
        if self.pending >= MAX_PENDING:
            self._drop(self._full, "the producer has too many unacknowledged attempt records")
            return
        try:
            self.producer.produce(
                self.topic,
                value=record.to_json(),
                key=record.event_id.encode(),
                on_delivery=self._acked,
            )
        except BufferError:
            self._drop(self._full, "the producer's queue is full")
            return
        except KafkaException as exc:  # refused at once (too large, ...): never the delivery's end
            self._drop(self._failed, f"Kafka refused it: {exc}")
            return
        self._produced += 1

    def _acked(self, err: Any, _msg: Any) -> None:
        self._settled += 1
        if err is not None:
            self._drop(self._failed, f"Kafka refused it: {err}")

    def _drop(self, counter: Any, why: str) -> None:
        counter.inc()
        now = time.monotonic()
        with self._lock:
            self._dropped += 1
            if now - self._told < LOG_EVERY:
                return
            dropped, self._dropped, self._told = self._dropped, 0, now
        log.warning(
            "%d attempt record(s) to %s dropped (deliveries go on); last: %s",
            dropped,
            self.topic,
            why,
        )
