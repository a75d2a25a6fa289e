"""The consumer thread: polls Kafka without pause, takes records in, commits finished prefixes.

It never does HTTP. It hands pairs to the delivery loop through `submit`, serves the producer's
acknowledgements (so every completion is recorded on this thread), stores the offsets whose pairs
are all finished, pauses partitions whose in-flight window is full, and holds a partition while
its head record waits: a retry-tier record until it is due, a record whose schema the registry
cannot serve just now until it is read again (`engine/outage.py`). Its group membership (the
partitions assigned, revoked or lost, and their offsets stored and committed) is its base's,
`engine/membership.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from dispatcher.config.topics import Topics
from dispatcher.engine.arrivals import Arrivals
from dispatcher.engine.membership import GroupMember
from dispatcher.engine.wiring import Key, Wiring
from dispatcher.http.sender import BREAKER_OPEN
from dispatcher.model.event import Record
from dispatcher.model.pair import Pair
from dispatcher.pipeline.intake import (
    NotYetDue,
    Outage,
    Pairs,
    Undecodable,
    take_event,
    take_retry,
)
from dispatcher.pipeline.match import HookIndex
from dispatcher.pipeline.retry import retired_tier

log = logging.getLogger(__name__)
BATCH = 500
POLL_SECONDS = 0.05
GATHER_BELOW = 64  # a turn that finds fewer records than this is a trickle, not a backlog ...
GATHER_SECONDS = 0.005  # ... and waits this long for more to take in with them ...
GATHER_RATE = 1000  # ... when records came at least this fast (a second) over the last second
LEAVE_AT_LEAST = 1.0  # seconds a stop leaves the groups before closing, past the drain deadline
LEAVE_AT_MOST = 10.0  # ... and at most, when the drain left more: a rebalance among live workers
# ends within a heartbeat interval or two, one held up by a dead member's JoinGroup does not


def tier_indexes(topics: Topics, subscribed: Iterable[str]) -> dict[str, int]:
    """The tier each retry tier topic's pairs count as coming from (`Pair.tier`, an index into
    `topics.retry`): a configured tier's own; a retired tier's among `subscribed` (one an
    earlier `topics.retry` named, read until it is empty), its place among the configured
    ones (`retired_tier`), so its pairs go on to those when they fail again. Its records are
    due when their own headers say, whatever the tier's delay: nothing waits longer."""
    tiers = {topic: index for index, topic in enumerate(topics.retry_topics)}
    for topic in topics.retired_tiers(subscribed):
        delay = topics.tier_delay(topic)
        assert delay is not None  # `retired_tiers` names tiers only
        tiers[topic] = retired_tier(topics.retry, delay)
    return tiers


class ConsumerLoop(GroupMember):
    """Polls the consumer, takes records in, serves acknowledgements, adjusts the pauses; at a
    stop it drains and leaves the group."""

    def __init__(
        self, consumer: Any, wiring: Wiring, *, reports_ready: bool = True, group_id: str = ""
    ) -> None:
        super().__init__(consumer, wiring, reports_ready=reports_ready)
        self.group_id = group_id or wiring.settings.group_id  # the consumer group it joins
        self.tiers = tier_indexes(wiring.settings.topics, self.topics)
        self.retired = set(self.tiers) - set(wiring.settings.topics.retry_topics)
        self._gone: set[str] = set()  # retired tiers found deleted, said once
        self.fetching = True
        self._consumed_by_topic: dict[str, Any] = {}
        self.arrivals = Arrivals()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, drain_deadline: Callable[[], float]) -> None:
        """Poll until asked to stop; then drain to the deadline, commit and close."""
        self.subscribe()
        while not self.stopping.is_set():
            self.pulse.beat()
            self.step()
        self.pulse.rest()  # its drain, leave and close are bounded by the stop deadline
        deadline = drain_deadline()
        self._drain(deadline)
        now = time.monotonic()
        self._leave(now + min(max(deadline - now, LEAVE_AT_LEAST), LEAVE_AT_MOST))
        self.close_by(max(deadline, time.monotonic()))
        self.flush_cut_records(deadline)

    def step(self) -> None:
        """One turn: take a batch in, serve acks, commit what finished, adjust pauses; stop
        when the producer failed for good.

        While the in-flight window is full (and its partitions not paused yet), the turn takes
        nothing in and waits up to POLL_SECONDS for acknowledgements instead: they make room."""
        messages: list[Any] = []
        acks_wait = 0.0
        if not self.fetching:
            self.consumer.poll(0)  # keep serving rebalance callbacks
        elif self.pauses.awaiting_room:
            acks_wait = POLL_SECONDS
        else:
            messages = self._fetch()
        if messages:
            self._take(messages)
        self.writer.poll(acks_wait)
        self.writer.flush_unsent()
        self._store()
        self.pauses.adjust(self.assigned, self.tracker, time.time())
        self.producer_failed()

    def _fetch(self) -> list[Any]:
        """What is buffered, up to a batch and the room left in the total window; else wait up
        to POLL_SECONDS for the first record. A trickle (fewer than GATHER_BELOW records) of a
        busy input (GATHER_RATE records a second or more) waits GATHER_SECONDS for the records
        behind it: at 3,000 events a second, a turn per record or two cost a fifth more CPU per
        delivery (a hand-off, a wake-up of the delivery loop, a producer flush each) than the
        5 ms it holds a record back. A quieter input is taken in at once: there a turn per
        record costs little, and the wait would be most of an event's time in the dispatcher.

        `consume(n, timeout)` returns only when n records are there or the timeout is up, so
        one blocking call made every record wait up to POLL_SECONDS below BATCH records/turn.
        A batch could otherwise overshoot the window before the pauses apply, by up to BATCH.
        """
        want = min(BATCH, max(self.settings.max_inflight - self.tracker.total_pending(), 1))
        messages: list[Any] = self.consumer.consume(want, 0)
        if not messages:
            messages = self.consumer.consume(1, POLL_SECONDS)
        if (
            messages
            and len(messages) < GATHER_BELOW
            and len(messages) < want
            and self.arrivals.last >= GATHER_RATE
        ):
            messages += self.consumer.consume(want - len(messages), GATHER_SECONDS)
        self.arrivals.add(len(messages))
        return messages

    # -- taking records in ------------------------------------------------------------------

    def _take(self, messages: list[Any]) -> None:
        now = time.time()
        hooks = self.hooks()
        batch: list[Pair] = []
        deferred: set[Key] = set()
        holding: Collection[str] | None = None  # asked once a batch, at its first event
        held: dict[str, list[tuple[Record, str]]] = {}
        for message in messages:
            if message.error() is not None:
                self._on_error(message.error(), message.topic())
                continue
            key = (message.topic(), message.partition())
            if key in deferred or key not in self.assigned:
                continue
            record = Record.from_message(message)
            tier = self.tiers.get(record.topic)
            if tier is None:
                self._consumed(record.topic).inc()
                if holding is None:
                    holding = self.holding()
                intake = self.taken(take_event, record, hooks, self.decode, holding)
            elif self._window_full(key):  # a tier bundle may hold hundreds of pairs: stop here
                deferred.add(key)
                self.pauses.fill(key, record.offset)
                continue
            else:
                intake = self.taken(take_retry, record, tier, hooks, self.decode, now)
            if isinstance(intake, NotYetDue):
                deferred.add(key)
                self.pauses.hold(key, record.offset, intake.due_at)
                continue
            if isinstance(intake, Outage):  # the registry away: read it again later
                deferred.add(key)
                self.pauses.hold(key, record.offset, self.outage.hold(key, intake.error, now))
                continue
            if self.outage.held:
                self.outage.taken(key)
            if isinstance(intake, Undecodable):
                self.tracker.add(record.topic, record.partition, record.offset, 1, record)
                self.dead_letter(record, intake, self._finisher(record), now)
                continue
            assert isinstance(intake, Pairs)
            for hook_id in intake.filtered:
                self.metrics.events_filtered.labels(hook_id).inc()
            ends = intake.ends
            weight = 1 if tier is None else ends  # a bundle weighs the tier records it replaces
            self.tracker.add(record.topic, record.partition, record.offset, ends, record, weight)
            for carried, why in intake.undecodable:  # a retry-tier record's event
                self.dead_letter(carried, why, self._finisher(record), now)
            for hook_id, idempotency_key in intake.held:
                held.setdefault(hook_id, []).append((record, idempotency_key))
            batch.extend(intake.pairs)
        if held:
            self._hold_back(held, hooks, now)
        if batch:
            self.submit(batch)

    def _hold_back(
        self, held: dict[str, list[tuple[Record, str]]], hooks: HookIndex, now: float
    ) -> None:
        """Hand the fresh pairs of hooks whose circuit is open to their first retry tier, in
        bundles, as `Deliverer.held_back` would on the delivery loop: with no `Pair`, no task
        and no crossing to the delivery loop, a dead hook costs the hooks beside it least.
        `hooks`: those the pairs were matched with, whose tenants their tier records name."""
        due_at = now + self.settings.topics.retry[0]
        last = (BREAKER_OPEN.kind or "", BREAKER_OPEN.error or "")
        for hook_id, items in held.items():
            log.debug(
                "hook %s: %d fresh pairs to its first retry tier (circuit open)",
                hook_id,
                len(items),
            )
            hook = hooks.get(hook_id)
            tenant = None if hook is None else hook.tenant
            self.writer.hold_back(hook_id, items, due_at, last, now, self._finish, tenant)

    def _consumed(self, topic: str) -> Any:
        """`dispatcher_events_consumed_total{topic}`, its label looked up once per topic."""
        counter = self._consumed_by_topic.get(topic)
        if counter is None:
            counter = self._consumed_by_topic[topic] = self.metrics.events_consumed.labels(topic)
        return counter

    def _window_full(self, key: Key) -> bool:
        settings = self.settings
        return (
            self.tracker.pending(*key) >= settings.max_inflight_per_partition
            or self.tracker.total_pending() >= settings.max_inflight
        )

    def finish(self, pair: Pair) -> Callable[[], None]:
        """The completion callback of `pair` (runs on this thread, from a producer ack)."""
        return self._finisher(pair.bundle or pair.record)

    def _finish(self, record: Record) -> None:
        self.tracker.finish(record.topic, record.partition, record.offset, record)

    def _finisher(self, record: Record) -> Callable[[], None]:
        tracker = self.tracker
        return lambda: tracker.finish(record.topic, record.partition, record.offset, record)

    # -- shutdown ---------------------------------------------------------------------------

    def _wait_for(self, keys: set[Key], deadline: float) -> None:
        """Serve acks until the partitions' pairs are finished or the deadline passes, or
        none can be any more (the producer failed for good)."""
        while time.monotonic() < deadline:
            self.writer.poll(0.02)
            self.writer.flush_unsent()
            self._store()
            if all(self.tracker.pending(*key) == 0 for key in keys) or self.producer_failed():
                return

    def _drain(self, deadline: float) -> None:
        self.fetching = False
        assigned = [TopicPartition(t, p) for t, p in self.assigned]
        if assigned:
            self.consumer.pause(assigned)
        self._wait_for(set(self.assigned), deadline)
        remaining = self.writer.flush(max(deadline - time.monotonic(), 1.0))
        if remaining:
            log.warning("%d outcome records not acknowledged at shutdown", remaining)
        self._store()

    def _leave(self, until: float) -> None:
        """Leave the group before the close, serving its rebalance callbacks on this thread.

        A close that meets a rebalance still under way (the other workers stopping too, or
        one joining) answers its callbacks while librdkafka terminates the group, where a
        race of librdkafka's can abort the process (`rd_kafka_cgrp_terminated: assert:
        !rd_kafka_assignment_in_progress`, seen once in CI, librdkafka 2.16). Unsubscribed
        first, the rebalance ends here, the partitions are revoked (and committed) like any
        other revoke, and the close finds no group to leave. librdkafka postpones the
        unsubscribe to the end of a rebalance under way, so this polls until the member id is
        gone: a member that left has none. Records fetched meanwhile are dropped unstored,
        for the partitions' next owner."""
        try:
            self.consumer.unsubscribe()
            while self.consumer.assignment() or self.consumer.memberid():
                if time.monotonic() >= until:
                    log.warning(
                        "the consumer of %s is still in its group (a rebalance under way, or "
                        "no coordinator): closing it anyway",
                        ", ".join(self.topics),
                    )
                    return
                self.consumer.consume(BATCH, POLL_SECONDS)
        except KafkaException as exc:
            log.warning("could not leave the group before closing: %s", exc)

    def _on_error(self, error: Any, topic: str | None = None) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            log.error("fatal consumer error, stopping: %s", error)
            self.fatal = str(error)
            self.stop()
            return
        if error.code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL:
            self._stop_for_another_kind_of_group()
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and topic in self.retired:
            self._retired_gone(topic, error)
            return
        log.warning("consumer error: %s", error)

    def _retired_gone(self, topic: str, error: Any) -> None:
        """A retired tier the cluster no longer has: deleted, as it may be once read to its
        end. librdkafka says so at each try, twice a second, until its next metadata refresh
        (`topic.metadata.refresh.interval.ms`, 5 minutes) takes the topic out of the
        subscription; said once here, it is no warning of something to fix."""
        if topic in self._gone:
            return
        self._gone.add(topic)
        log.info("retired retry tier %s is not in the cluster (deleted): %s", topic, error)

    def _stop_for_another_kind_of_group(self) -> None:
        """The group id is held by a group of another kind (a share group, which workers ran
        with `consume: share`; its assignment strategy is fixed here, so no consumer group of
        ours differs): the broker refuses this member at every try and nothing would ever be
        consumed, so the worker stops, saying how to switch (the README's Queue mode)."""
        group = self.group_id
        self.fatal = (
            f"group_id {group} is not a consumer group: a group of another kind holds the id"
            f" (a share group, if workers ran it with consume: share). Stop those workers and"
            f" delete it (kafka-share-groups.sh --delete --group {group}), or set another"
            " group_id; the consumer group then starts at the earliest record"
        )
        log.error("cannot join the consumer group, stopping: %s", self.fatal)
        self.stop()
