"""The hook store: hook definitions in a compacted Kafka topic (contract `topics.hooks`).

Key = hook id, value = the definition as JSON, tombstone = deleted. Only checked definitions
(`dispatcher.hooks.definitions`) are written, and the records of one apply go in one Kafka
transaction, so an apply is taken whole or not at all. `StoreFollower` keeps a worker's hooks
current.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, KafkaUnavailable
from dispatcher.hooks.definitions import Definition, merged
from dispatcher.hooks.stored import StoredHooks
from dispatcher.kafka.clients import made
from dispatcher.kafka.scan import scan
from dispatcher.kafka.scopes import client_settings
from dispatcher.logs import KAFKA
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex

Offsets = dict[int, int]
TIMEOUT = 30.0


def hooks_in_force(settings: Settings) -> HookIndex:
    """The hooks a worker started now would use: the hooks file's, then the store's."""
    from dispatcher.hooks.loader import load_hooks_file

    base = load_hooks_file(settings.hooks_file) if settings.hooks_file else []
    if not settings.topics.hooks:
        return HookIndex(base)
    return merged(base, HookStore(settings).read())


def ensure_store_topic(settings: Settings) -> None:
    """Create the store topic (one partition, compacted) when it does not exist yet."""
    ensure_compacted_topic(settings, settings.topics.hooks)


def ensure_compacted_topic(settings: Settings, topic: str) -> None:
    """Create `topic` (one partition, compacted) when it does not exist yet: the hook store,
    the health topic."""
    admin = made(AdminClient, client_settings(settings, "producer"), settings)
    try:
        if topic in admin.list_topics(timeout=TIMEOUT).topics:
            return
        config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        future = admin.create_topics([NewTopic(topic, num_partitions=1, config=config)])[topic]
        future.result(TIMEOUT)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise KafkaUnavailable(f"cannot create the topic {topic}: {exc}") from None


class HookStore:
    """Writes to and reads the store topic; one transactional producer, made on first write."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.hooks
        self._producer: Producer | None = None
        self._lock = threading.Lock()  # one transaction at a time (admin API threads)

    def read(self) -> dict[str, Hook]:
        """The store's hooks as a worker started now would hold them: one it could not load,
        or not run as it consumes, in force as unusable (`Hook.unusable` says why)."""
        stored = StoredHooks(self.settings.secrets, self.settings.consume)
        for record in scan(self.settings, self.topic):
            stored.take(record)
        return stored.hooks

    def apply(self, definitions: list[Definition]) -> Offsets:
        """Write checked definitions in one transaction; the offsets written.

        Nothing is written when two share an id (`ConfigError` lists each).
        """
        errors: list[str] = []
        ids: set[str] = set()
        for i, definition in enumerate(definitions):
            if definition.hook.id in ids:
                errors.append(f"hooks[{i}]: id: duplicate id {definition.hook.id!r}")
            ids.add(definition.hook.id)
        if errors:
            raise ConfigError("\n".join(errors))
        records = [(d.hook.id, json.dumps(d.raw, separators=(",", ":"))) for d in definitions]
        return self._write([(key, value.encode()) for key, value in records])

    def delete(self, hook_id: str) -> Offsets:
        """Write the tombstone of `hook_id`."""
        return self._write([(hook_id, None)])

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(TIMEOUT)
            self._producer = None

    def _write(self, records: list[tuple[str, bytes | None]]) -> Offsets:
        with self._lock:
            return self._write_one_transaction(records)

    def _write_one_transaction(self, records: list[tuple[str, bytes | None]]) -> Offsets:
        producer = self._transactional()
        written: Offsets = {}
        failures: list[str] = []

        def on_delivery(err: Any, message: Any) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                written[message.partition()] = max(
                    written.get(message.partition(), 0), message.offset() + 1
                )

        try:
            producer.begin_transaction()
            for key, value in records:
                producer.produce(self.topic, key=key.encode(), value=value, on_delivery=on_delivery)
            producer.commit_transaction(TIMEOUT)
        except KafkaException as exc:
            self._abort(producer)
            raise KafkaUnavailable(f"the hook store did not take the change: {exc}") from None
        if failures:
            raise KafkaUnavailable(f"the hook store did not take the change: {failures[0]}")
        return written

    def _transactional(self) -> Producer:
        if self._producer is None:
            ensure_store_topic(self.settings)
            producer = made(
                Producer,
                {
                    **client_settings(self.settings, "producer"),
                    "transactional.id": f"dugaa-hooks-{uuid.uuid4().hex}",
                    "enable.idempotence": True,
                    "acks": "all",
                    "logger": KAFKA,
                },
                self.settings,
            )
            try:
                producer.init_transactions(TIMEOUT)
            except KafkaException as exc:
                raise KafkaUnavailable(
                    f"the hook store cannot start a transaction: {exc}"
                ) from None
            self._producer = producer
        return self._producer

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(TIMEOUT)
        except KafkaException:
            self._producer = None  # a fatal state: the next write starts a fresh producer
