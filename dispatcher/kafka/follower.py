"""Follow a compacted topic: read it to its end, then follow it in a thread.

`TopicFollower.start()` returns once every partition of the topic has been read to its end, so
a worker calls it before consuming events; a thread then follows the topic and applies each
batch within the poll interval. `StoreFollower` keeps a worker's hooks current (the hooks in
force, hooks file + store, go to `on_change` after every change); the health topic has its own
(`dispatcher.kafka.health`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from dispatcher.config.settings import Settings
from dispatcher.errors import KafkaUnavailable
from dispatcher.hooks.definitions import merged
from dispatcher.hooks.stored import StoredHooks
from dispatcher.kafka.clients import made
from dispatcher.kafka.scan import partitions_of, scan_config
from dispatcher.kafka.store import Offsets, ensure_compacted_topic
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
STOP_SECONDS = 10.0  # a stop waits this long for the following thread, unless told a deadline


class TopicFollower:
    """Reads a compacted topic to its end, then follows it; subclasses `_apply` each batch
    (called holding `_changed`, from `start()` and then from the following thread)."""

    def __init__(self, settings: Settings, topic: str, name: str) -> None:
        self.settings = settings
        self.topic = topic
        self._positions: Offsets = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._consumer: Any = None
        self._thread = threading.Thread(target=self._follow, name=name, daemon=True)

    def _apply(self, records: list[Record]) -> None:
        raise NotImplementedError

    def _read_to_end(self, timeout: float) -> None:
        ensure_compacted_topic(self.settings, self.topic)
        consumer = made(Consumer, scan_config(self.settings), self.settings)
        self._consumer = consumer
        deadline = time.monotonic() + timeout
        partitions = partitions_of(consumer, self.topic)
        while not partitions and time.monotonic() < deadline:  # a topic just created
            time.sleep(0.1)
            partitions = partitions_of(consumer, self.topic)
        if not partitions:
            consumer.close()
            raise KafkaUnavailable(f"the topic {self.topic} has no partitions")
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        while pending:
            if time.monotonic() > deadline:
                consumer.close()
                raise KafkaUnavailable(f"the topic {self.topic} was not read within {timeout:g}s")
            pending -= self._take(consumer)

    def _follow_in_thread(self) -> None:
        self._thread.start()

    def wait_for(self, offsets: Offsets, timeout: float) -> bool:
        """Whether the follower has read up to `offsets` (as a write returns them) in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            return self._changed.wait_for(
                lambda: all(self._positions.get(p, 0) >= o for p, o in offsets.items()),
                max(deadline - time.monotonic(), 0),
            )

    def stop(self, by: float | None = None) -> None:
        """Stop following; wait for the thread (its consumer's close) up to `by`, a
        `time.monotonic()` deadline (STOP_SECONDS from now without one)."""
        self._stopping.set()
        if self._thread.is_alive():
            by = time.monotonic() + STOP_SECONDS if by is None else by
            self._thread.join(timeout=max(by - time.monotonic(), 0.0))
        elif self._consumer is not None:
            self._consumer.close()

    def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stopping.is_set():
                self._take(consumer)
        except Exception:
            log.exception("following %s failed: what it holds stays as it is", self.topic)
        finally:
            consumer.close()

    def _take(self, consumer: Any) -> set[int]:
        """Apply one batch; the partitions that reported their end."""
        at_end: set[int] = set()
        records: list[Record] = []
        for message in consumer.consume(100, POLL_SECONDS):
            error = message.error()
            if error is None:
                records.append(Record.from_message(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            else:
                log.warning("%s: %s", self.topic, error.str())
        if records:
            with self._changed:
                self._apply(records)
                for record in records:
                    self._positions[record.partition] = record.offset + 1
                self._changed.notify_all()
        return at_end


class StoreFollower(TopicFollower):
    """Follows the store topic; `stored` is its current content, `on_change` gets file + store."""

    def __init__(
        self, settings: Settings, base: HookIndex, on_change: Callable[[HookIndex], None]
    ) -> None:
        super().__init__(settings, settings.topics.hooks, "hook-store")
        self.base = list(base)
        self.on_change = on_change
        self._store = StoredHooks(settings.secrets, settings.consume)
        # while `start()` reads the store to its end: what each hook's latest record is wrong
        # with, logged once read (a hook's earlier records are history, fixed or deleted since)
        self._held: dict[str, str] | None = None

    @property
    def stored(self) -> dict[str, Hook]:
        """The store's hooks as last read."""
        with self._changed:
            return dict(self._store.hooks)

    def definition(self, hook_id: str) -> dict[str, Any] | None:
        """The stored definition of `hook_id` as written (secret references, not values)."""
        with self._changed:
            found = self._store.definitions.get(hook_id)
            return None if found is None else dict(found)

    def start(self, timeout: float = 30.0) -> HookIndex:
        """Read the store to its end, hand over the hooks in force, then follow in a thread."""
        self._held = {}
        try:
            self._read_to_end(timeout)
        finally:
            held, self._held = self._held, None
        for problem in held.values():
            log.error("hook store: %s", problem)
        index = merged(self.base, self.stored)
        log.info("hook store %s read: %d hooks stored", self.topic, len(self._store.hooks))
        self.on_change(index)
        self._follow_in_thread()
        return index

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            problem = self._store.take(record)
            if record.key is not None and self._held is not None:  # `start()` reads the store
                hook_id = record.key.decode("utf-8", "replace")
                self._held.pop(hook_id, None)  # what an earlier record of the hook said is over
                if problem is not None:
                    self._held[hook_id] = problem
            elif problem is not None:
                level = logging.WARNING if record.key is None else logging.ERROR
                log.log(level, "hook store: %s", problem)
        index = merged(self.base, self._store.hooks)
        if self._thread.is_alive():
            self.on_change(index)
            log.info("hooks changed: %d in force", len(index))


def follow_store(
    settings: Settings, base: HookIndex, on_change: Callable[[HookIndex], None]
) -> StoreFollower | None:
    """Read the hook store to its end and follow it; None when it is switched off (no topic)."""
    if not settings.topics.hooks:
        return None
    follower = StoreFollower(settings, base, on_change)
    follower.start()
    return follower
