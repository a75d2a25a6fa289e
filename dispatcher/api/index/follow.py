"""Follow the results, dead-letter and attempts topics into the index, from its stored offsets on.

A thread of the admin service: it assigns every partition of those topics at the offset the
index holds (the beginning for a new one), writes each batch with its offsets in one
transaction, picks up partitions and topics that appear later, and prunes by age and count.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from dispatcher.api.index.database import Index
from dispatcher.api.index.rows import AttemptRow, LetterRow, ResultRow
from dispatcher.config.settings import Settings
from dispatcher.kafka.avro.decoder import event_decoder
from dispatcher.kafka.clients import made
from dispatcher.kafka.results import result_schemas
from dispatcher.kafka.scan import partitions_of, scan_config
from dispatcher.model.event import Record

log = logging.getLogger(__name__)
BATCH = 500
POLL_SECONDS = 0.2
REFRESH_SECONDS = 5.0
PRUNE_SECONDS = 60.0


class IndexFollower:
    """Keeps `index` following `settings.topics.results`, `.dead_letter` and `.attempts`
    (when set)."""

    def __init__(self, settings: Settings, index: Index) -> None:
        self.settings = settings
        self.index = index
        topics = settings.topics
        self.topics = (topics.results, topics.dead_letter, *filter(None, [topics.attempts]))
        self._registry = result_schemas(settings.schema_registry)  # framed Avro results' schemas
        self._decode = event_decoder(settings.schema_registry)  # dead letters' events, Avro too
        self._assigned: set[tuple[str, int]] = set()
        self._stopping = threading.Event()
        self._batches = threading.Condition()
        self._written = 0
        self._attempts_written = 0
        self._thread = threading.Thread(target=self._follow, name="index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    @property
    def written(self) -> int:
        """How many results and dead letters have been indexed since start (tests and the
        status line)."""
        with self._batches:
            return self._written

    @property
    def attempts_written(self) -> int:
        """How many attempt records have been indexed since start."""
        with self._batches:
            return self._attempts_written

    def _follow(self) -> None:
        config = {**scan_config(self.settings), "enable.partition.eof": False}
        consumer = made(Consumer, config, self.settings)
        refreshed = pruned = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now - refreshed > REFRESH_SECONDS:
                    self._assign_new(consumer)
                    refreshed = now
                if now - pruned > PRUNE_SECONDS:
                    self._prune()
                    pruned = now
                self._take(consumer)
        except Exception:
            log.exception("following %s into the index failed", ", ".join(self.topics))
        finally:
            consumer.close()

    def _assign_new(self, consumer: Any) -> None:
        new: list[TopicPartition] = []
        for topic in self.topics:
            stored = self.index.positions(topic)
            for partition in partitions_of(consumer, topic):
                if (topic, partition) not in self._assigned:
                    start = stored.get(partition, OFFSET_BEGINNING)
                    new.append(TopicPartition(topic, partition, start))
                    self._assigned.add((topic, partition))
        if new:
            consumer.incremental_assign(new)

    def _take(self, consumer: Any) -> None:
        if not self._assigned:
            self._stopping.wait(POLL_SECONDS)
            return
        results: list[ResultRow] = []
        letters: list[LetterRow] = []
        attempts: list[AttemptRow] = []
        positions: dict[tuple[str, int], int] = {}
        topics = self.settings.topics
        for message in consumer.consume(BATCH, POLL_SECONDS):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("index: %s", error.str())
                continue
            record = Record.from_message(message)
            positions[(record.topic, record.partition)] = record.offset + 1
            if record.topic == topics.results:
                row = ResultRow.from_record(record, self._registry)
                if row is not None:
                    results.append(row)
            elif record.topic == topics.attempts:
                attempt = AttemptRow.from_record(record)
                if attempt is not None:
                    attempts.append(attempt)
            else:
                letters.append(LetterRow.from_record(record, self._decode))
        if positions:
            self.index.add(results, letters, positions, attempts)
            with self._batches:
                self._written += len(results) + len(letters)
                self._attempts_written += len(attempts)
                self._batches.notify_all()

    def _prune(self) -> None:
        admin = self.settings.admin
        dropped = self.index.prune(time.time() - admin.retention, admin.max_records)
        if dropped:
            log.info("index: %d rows past retention dropped", dropped)
