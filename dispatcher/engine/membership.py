"""A consumer group's member, as the group-mode consumer thread is one: the partitions the
group assigns it, the offsets it stores and commits of them, and what it does as they come and
go (assign, revoke, loss).

A partition that leaves has its pairs released first: none started any more, those sending
given a while, the rest cut; then its offsets are committed and its state forgotten, so that
its new owner delivers what this worker did not finish, once. The consumer loop
(`engine/consumer.py`) is this base's subclass: it polls, takes records in and stops.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from dispatcher.engine.outage import RegistryOutage
from dispatcher.engine.pauses import Pauses
from dispatcher.engine.tracker import OffsetTracker
from dispatcher.engine.wiring import Key, WiredLoop, Wiring

log = logging.getLogger(__name__)
REVOKE_WAIT = 10.0  # seconds a revoke waits for the partitions' requests already sent
RELEASE_GRACE = 5.0  # and then for the delivery loop to cut the rest


class GroupMember(WiredLoop):
    """Owns the partitions assigned, their offset tracker and their pauses."""

    def __init__(self, consumer: Any, wiring: Wiring, *, reports_ready: bool) -> None:
        super().__init__(consumer, wiring)  # `release` lets go of the pairs of leaving partitions
        settings = wiring.settings
        self.reports_ready = reports_ready  # the input-topic loop speaks for /readyz
        self.tracker = OffsetTracker()
        # the writer is this loop's alone: what it has not written of a partition that leaves
        # (its tracker dropped) is dropped unwritten, for the partition's new owner
        self.writer.owner = self.tracker.generation
        self.assigned: set[Key] = set()
        self.pauses = Pauses(consumer, settings.max_inflight_per_partition, settings.max_inflight)
        self.outage = RegistryOutage(wiring.metrics.registry_held_partitions)
        self.ready = threading.Event()

    def subscribe(self) -> None:
        self.consumer.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    # -- committing --------------------------------------------------------------------------

    def _store(self) -> None:
        moved = self.tracker.advance()
        if not moved:
            return
        offsets = [
            TopicPartition(t, p, o) for (t, p), o in moved.items() if (t, p) in self.assigned
        ]
        if offsets:
            try:
                self.consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:
                log.warning("could not store offsets: %s", exc)

    def close(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("final commit failed: %s", exc)
        super().close()

    # -- rebalances -------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned.add((tp.topic, tp.partition))
        log.info("assigned %s", _names(partitions))
        if self.assigned:
            self.ready.set()
        self._report_ready()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        log.info("revoking %s", _names(partitions))
        # stopping: the drain has already given in-flight pairs their time
        wait = 0.0 if self.stopping.is_set() else min(REVOKE_WAIT, self.settings.drain_timeout)
        self._release(keys, wait)
        self._store()
        try:
            # stopping, the leave serves this revoke on the consumer thread, where a synchronous
            # commit would wait for ever on a coordinator that is gone: the close that follows
            # waits for this one, within its bound
            consumer.commit(asynchronous=self.stopping.is_set())
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit on revoke failed: %s", exc)
        self._forget(keys)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s: their unfinished work will be redelivered", _names(partitions))
        keys = {(tp.topic, tp.partition) for tp in partitions}
        self._release(keys, 0.0)
        self._forget(keys)

    def _release(self, keys: set[Key], wait: float) -> None:
        """Start no more of the partitions' pairs, give those sending up to `wait` seconds, cut
        the rest, and flush the outcomes written. What was cut or never started is delivered
        by the partitions' new owner: a late outcome from here would duplicate its work, and
        could break per-key order."""
        if not any(self.tracker.pending(*key) for key in keys):
            return
        deadline = time.monotonic() + wait
        try:
            released = self.release(keys, wait)
        except RuntimeError as exc:  # the delivery loop is gone: nothing of it runs any more
            log.warning("could not release %s: %s", _names_of(keys), exc)
            return
        while not released.done() and time.monotonic() < deadline + RELEASE_GRACE:
            self.writer.poll(0.02)  # the acks of outcomes written meanwhile
            self.writer.flush_unsent()
        if not released.done():
            log.warning("the deliveries of %s did not stop in time", _names_of(keys))
        elif released.exception() is not None:  # a defect must not escape a rebalance callback
            log.error("releasing %s failed: %r", _names_of(keys), released.exception())
        elif cut := released.result():
            log.warning("%d deliveries cut: %s left this worker", cut, _names_of(keys))
        self.writer.flush_unsent()
        self.writer.flush(max(deadline - time.monotonic(), 1.0))

    def _report_ready(self) -> None:
        if self.reports_ready:
            self.metrics.ready.set(1 if self.assigned else 0)

    def _forget(self, keys: set[Key]) -> None:
        """Drop the partitions' state, their pause (and hold for the schema registry) included."""
        self.pauses.release(keys)
        self.outage.forget(keys)
        for key in keys:
            self.assigned.discard(key)
            self.tracker.drop(*key)
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(key[0], str(key[1]))
        if not self.assigned:
            self.ready.clear()
        self._report_ready()


def _names(partitions: list[TopicPartition]) -> str:
    return _names_of([(tp.topic, tp.partition) for tp in partitions])


def _names_of(keys: Iterable[Key]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(keys)) or "nothing"
