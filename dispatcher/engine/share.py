"""Queue mode's consumer thread: acquires records from a share group, accepts each one only
when every outcome of it is acknowledged by Kafka (contract section 11).

Like the group-mode loop it never does HTTP: it hands pairs to the delivery loop through
`submit` and serves the producer's acknowledgements. A batch (one poll) is worked off before
the next poll, as explicit acknowledgement requires; pairs that would outlast their records'
acquisition lock are handed to the first retry tier before it expires, and a batch whose lock
ran out while the worker was stalled is given up (no request and no outcome from here).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import AcknowledgeType, KafkaError, KafkaException

from dispatcher.engine.consumer import LEAVE_AT_LEAST
from dispatcher.engine.sharebatch import Coordinates, ShareBatch, coordinates
from dispatcher.engine.wiring import WiredLoop, Wiring
from dispatcher.errors import ConfigError
from dispatcher.http.sender import Attempt
from dispatcher.kafka.sharegroup import ShareLimits
from dispatcher.kafka.writer import deferred_records
from dispatcher.logs import REPEAT_WINDOW, Repeats
from dispatcher.model.event import Record
from dispatcher.model.pair import Pair
from dispatcher.pipeline.intake import Outage, Pairs, Undecodable, take_event
from dispatcher.pipeline.match import HookIndex
from dispatcher.pipeline.share import lock_handoff, on_last_delivery, redelivered

log = logging.getLogger(__name__)
# said once a window while the schema registry is away, not once a record
deferrals = logging.getLogger(f"{__name__}.deferrals")
deferrals.addFilter(Repeats(REPEAT_WINDOW))
POLL_SECONDS = 0.1
ACK_WAIT = 0.02  # a turn's wait for producer acknowledgements while a batch is worked off
LOCK_MARGIN = 0.25  # of the lock: hand off what still runs this long before it expires
# of the lock: with less than this left, too late for a hand-off to be written and accepted
LAPSE_MARGIN = LOCK_MARGIN / 2
COMMIT_TIMEOUT = 15.0  # a commit's wait for the broker's answer, until the loop stops
# once stopping, a commit waits to the drain deadline, and at least this long past the flush
# before it: the close and the last flush after it are bounded by the drain deadline too
# (`close_by`, `flush_cut_records`), so the thread ends within the worker's stop deadline
# (`STOP_GRACE`), the broker gone or not
FINAL_COMMIT_AT_LEAST = LEAVE_AT_LEAST


def refuse_ordered_hooks(hooks: HookIndex) -> None:
    """A share group gives no order: hooks with `ordering: key` cannot run in queue mode."""
    ordered = sorted(
        hook.id for hook in hooks if hook.ordering == "key" and hook.unusable is None
    )  # one from the hook store is taken in as unusable (`dispatcher.kafka.follower`)
    if ordered:
        raise ConfigError(
            f"consume: share gives no order, and these hooks have ordering: key:"
            f" {', '.join(ordered)} (run them with consume: group, or set ordering: none)"
        )


def member_ready(statistics: str) -> bool | None:
    """Whether librdkafka's statistics show the consumer connected to its group's coordinator
    (`cgrp.state` up) with partitions assigned; None when they say nothing of a group."""
    try:
        group = json.loads(statistics).get("cgrp")
    except (ValueError, AttributeError):
        return None
    if not isinstance(group, dict):
        return None
    return group.get("state") == "up" and group.get("assignment_size", 0) > 0


class ShareLoop(WiredLoop):
    """Owns the share consumer and the batch it works off."""

    def __init__(
        self,
        consumer: Any,
        wiring: Wiring,
        limits: ShareLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(consumer, wiring)  # `release` cuts running pairs (a lock hand-off)
        self.limits = limits
        self.clock = clock  # records' locks are measured on it, as `Scheduler.clock` reads them
        self.batch: ShareBatch | None = None
        self.handed_off = False  # the current batch's lock hand-off has been made
        self.ready = threading.Event()
        self.drain_deadline: float | None = None  # set as the loop stops: it bounds commits

    def on_statistics(self, payload: str) -> None:
        """/readyz and `dispatcher_ready` from librdkafka's statistics (each
        `statistics.interval.ms`, served by this thread's polls). A share consumer keeps its
        assignment while Kafka is gone: only its group's state tells it lost the coordinator."""
        ready = member_ready(payload)
        if ready is None or ready == self.ready.is_set():
            return
        if ready:
            self.ready.set()
        else:
            self.ready.clear()
        self.metrics.ready.set(1 if ready else 0)

    def run(self, drain_deadline: Callable[[], float]) -> None:
        """Acquire and work off batches until asked to stop; then drain, release, close."""
        self.consumer.subscribe(self.topics)
        while not self.stopping.is_set():
            self.pulse.beat()
            self.step()
        self.pulse.rest()  # its drain, leave and close are bounded by the stop deadline
        deadline = self.drain_deadline = drain_deadline()
        self._drain(deadline)
        self.close_by(deadline)
        self.flush_cut_records(deadline)

    def step(self) -> None:
        """One turn: poll when the last batch is committed, else serve acks and watch the
        lock; stop when the producer failed for good (the batch's records unsettled go back to
        the group at the drain, for other workers)."""
        if self.batch is None:
            self._take(self._poll())
        else:
            self.writer.poll(ACK_WAIT)
        self.writer.flush_unsent()
        if self.producer_failed():
            return
        if self.batch is not None:
            self._watch_lock()  # (which may give the batch up)
        if self.batch is not None and self.batch.settled:
            self._commit()

    def _poll(self) -> list[Any]:
        try:
            messages: list[Any] = self.consumer.poll(POLL_SECONDS)
        except KafkaException as exc:
            self._on_error(exc.args[0])
            return []
        self.writer.poll(0)
        return messages

    # -- taking records in ------------------------------------------------------------------

    def _take(self, messages: list[Any]) -> None:
        now = time.time()
        hooks = self.hooks()
        batch = ShareBatch(self.clock())
        self.batch, self.handed_off = batch, False
        start: list[Pair] = []
        for message in messages:
            if message.error() is not None:
                self._on_error(message.error())
                continue
            record = Record.from_message(message)
            key = (record.topic, record.partition, record.offset)
            self.metrics.share_records.labels("acquired").inc()
            self.metrics.events_consumed.labels(record.topic).inc()
            intake = self.taken(take_event, record, hooks, self.decode)
            if isinstance(intake, Outage) and self.settings.topics.retry:
                batch.add(key, message, 1)
                self._defer(record, intake.error, self._written(batch, key), now)
                continue
            if isinstance(intake, Outage):  # no retry tier to wait in
                intake = Undecodable(intake.error)
            if isinstance(intake, Undecodable):
                batch.add(key, message, 1)
                self.dead_letter(record, intake, self._written(batch, key), now)
                continue
            assert isinstance(intake, Pairs)
            for hook_id in intake.filtered:
                self.metrics.events_filtered.labels(hook_id).inc()
            count = message.delivery_count()
            if intake.pairs and on_last_delivery(count, self.limits.delivery_count_limit):
                self.metrics.share_records.labels("redelivered").inc()
                batch.add(key, message, len(intake.pairs))
                for pair in intake.pairs:
                    outcome = self.untried(pair, redelivered(pair, count, now))
                    self.writer.count(outcome)
                    records = self.writer.records_for(outcome, record)
                    self.writer.write_now(records, self._written(batch, key))
                continue
            batch.add(key, message, len(intake.pairs), intake.pairs)
            if not intake.pairs:
                self.consumer.acknowledge(message)  # no hook wants it
            start.extend(intake.pairs)
        if start:
            self.submit(start, self._lock_point(batch, LOCK_MARGIN))

    def _defer(self, record: Record, why: str, done: Callable[[], None], now: float) -> None:
        """Hand `record`, whose event cannot be read while the schema registry is away, to the
        first retry tier (model/deferral.py), to be accepted once Kafka has it there: its
        consumer group holds the tier's partition until the registry is back, as group mode
        holds the input's. Releasing the record instead would have it redelivered at once,
        each time raising its delivery count, until the broker archived it unseen."""
        self.metrics.share_records.labels("deferred").inc()
        tier = self.settings.topics.retry_topic(0)
        deferrals.warning(
            "%s: the events that need it are handed to the first retry tier, %s, and accepted;"
            " they are read there again as it comes back",
            why,
            tier,
        )
        self.writer.write_now(deferred_records(self.settings.topics, record, why, now), done)

    def finish(self, pair: Pair) -> Callable[[], None]:
        """The completion callback of `pair`, asked for on the delivery loop's thread when its
        result is ready; the callback runs here, on the producer's acknowledgement."""
        batch = self.batch
        if batch is None or not batch.decided(pair):
            return lambda: None
        return self._written(batch, coordinates(pair))

    def observe(self, pair: Pair, number: int, attempt: Attempt) -> None:
        """Count an attempt of a pair of the batch (an `AttemptObserver`, on the delivery
        loop), so that a lock hand-off carries the pair's attempts on."""
        batch = self.batch
        if batch is not None:
            batch.attempted(pair, number, time.time() - attempt.seconds)

    def _written(self, batch: ShareBatch, key: Coordinates) -> Callable[[], None]:
        def written() -> None:
            if batch is not self.batch:
                return  # a batch already committed or released: its records moved on
            message = batch.written(key)
            if message is not None:
                self.consumer.acknowledge(message)

        return written

    # -- locks, commits, shutdown -----------------------------------------------------------

    def _lock_point(self, batch: ShareBatch, left: float) -> float:
        """When the batch's records have `left` (a share) of their lock left, by the clock read
        as they were acquired (the broker's lock began a little earlier: the margins cover it).
        From `LOCK_MARGIN` before its end the delivery loop starts no attempt of them."""
        return batch.acquired_at + self.limits.lock_seconds * (1 - left)

    def _watch_lock(self) -> None:
        """Hand the batch's running pairs to the first retry tier before the lock expires: the
        broker would give the records to another worker, which would deliver them again. Too
        late for that (the worker was stalled: SIGSTOP, a long pause), give the batch up."""
        batch = self.batch
        assert batch is not None
        at, lapse = self.clock(), self._lock_point(batch, LAPSE_MARGIN)
        if at < self._lock_point(batch, LOCK_MARGIN):
            return
        if at >= lapse and batch.running():
            self._give_up(batch)
            return
        if self.handed_off:
            return
        self.handed_off = True
        running = batch.running()
        if not running:
            return
        tiers = self.settings.topics.retry
        if not tiers:
            log.warning("%d deliveries outlast their records' lock; no retry tier", len(running))
            return
        cut = self.release({(p.record.topic, p.record.partition) for p in running}, 0.0)
        while not cut.done() and self.clock() < lapse:
            self.writer.poll(ACK_WAIT)
        if self.clock() >= lapse:
            self._give_up(batch)  # the cut took what was left of the lock, or a stall did
            return
        now = time.time()
        handed = 0
        for pair in batch.running():
            # A pair ends once: one that the delivery loop ended meanwhile keeps that end (its
            # record is counted by it), and a pair handed off here has no other end counted.
            made = batch.made(pair)  # (read first: deciding forgets it)
            if not batch.decided(pair):
                continue
            handoff = lock_handoff(pair, tiers, now, made)
            self.writer.count(handoff)
            records = self.writer.records_for(handoff, pair.record)
            self.writer.write_now(records, self._written(batch, coordinates(pair)))
            handed += 1
        if handed:
            log.warning("%d deliveries handed to a retry tier: their records' lock ends", handed)

    def _give_up(self, batch: ShareBatch) -> None:
        """The batch's lock has ended, or nearly, with pairs of it not ended: the broker hands
        their records to another worker, which delivers them. So none of them makes a request
        or gets an outcome here any more (those the delivery loop has not started stay so;
        those sending are cut), and the batch ends: its records not settled are released (the
        broker refuses that once their lock is gone) and counted `expired`. A pair whose end
        was decided before keeps it: its request was made, and its outcome stands."""
        running = batch.running()
        self.release({(p.record.topic, p.record.partition) for p in running}, 0.0)
        given_up = self._end_batch(batch, "expired")
        log.warning(
            "%d records given up, with %d deliveries not ended, as their lock runs out (the"
            " worker was stalled, or they outlast it with no retry tier); the broker hands"
            " them to another worker",
            given_up,
            len(running),
        )

    def _commit(self) -> None:
        """Send the batch's acknowledgements and wait for the broker's answer."""
        batch = self.batch
        assert batch is not None
        self.batch = None
        if not len(batch):
            return
        refused = self._commit_sync()
        past_lock = self._past_lock(batch)
        for message in batch.messages():
            late = past_lock or (message.topic(), message.partition()) in refused
            self.metrics.share_records.labels("expired" if late else "accepted").inc()

    def _past_lock(self, batch: ShareBatch) -> bool:
        """The batch's acknowledgements were committed after its records' lock ended: the
        broker may have handed them to another worker already, and when that worker has
        acknowledged them, the broker takes these late ones without a word, not refused."""
        return self.clock() >= self._lock_point(batch, 0.0)

    def _commit_sync(self) -> set[tuple[str, int]]:
        """Commit the acknowledgements given; the partitions whose acknowledgement was refused
        (the records' lock had expired: they are delivered again, and keep their webhook-id).
        Once the loop stops, the wait is bounded by the drain deadline (`FINAL_COMMIT_AT_LEAST`)."""
        timeout = COMMIT_TIMEOUT
        if self.drain_deadline is not None:
            left = self.drain_deadline - time.monotonic()
            timeout = min(timeout, max(left, FINAL_COMMIT_AT_LEAST))
        try:
            answers = self.consumer.commit_sync(timeout) or {}
        except KafkaException as exc:
            log.warning("acknowledgement commit failed: %s", exc)
            return set()
        refused = {(tp.topic, tp.partition) for tp in answers if tp.error is not None}
        for tp in answers:
            if tp.error is not None:
                log.warning(
                    "acknowledgements refused for %s[%d]: %s", tp.topic, tp.partition, tp.error
                )
        return refused

    def _drain(self, deadline: float) -> None:
        """Stop acquiring; give the batch until `deadline`; release what did not finish.

        The lock is watched meanwhile, as in any turn: a drain longer than what is left of
        the lock would otherwise go on sending for records the broker has handed to another
        worker, and have their late acknowledgements refused."""
        while self.batch is not None and not self.batch.settled and time.monotonic() < deadline:
            self.writer.poll(ACK_WAIT)
            self.writer.flush_unsent()
            if self.producer_failed():
                break
            self._watch_lock()
        self.writer.flush(max(deadline - time.monotonic(), 1.0))
        batch = self.batch
        if batch is None:
            return
        released = self._end_batch(batch, "released")
        if released:
            log.info("released %d records for other workers", released)

    def _end_batch(self, batch: ShareBatch, unsettled_as: str) -> int:
        """End `batch` before it settled: release its records whose outcomes are not all
        acknowledged, commit, and count them as `unsettled_as`, the others accepted (or
        expired, past the lock). How many were released."""
        unsettled = batch.unsettled()
        for message in unsettled:
            self.consumer.acknowledge(message, AcknowledgeType.RELEASE)
        self.batch = None
        self._commit_sync()
        accepted = len(batch) - len(unsettled)
        late = self._past_lock(batch)
        self.metrics.share_records.labels("expired" if late else "accepted").inc(accepted)
        self.metrics.share_records.labels(unsettled_as).inc(len(unsettled))
        return len(unsettled)

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            log.error("fatal share consumer error, stopping: %s", error)
            self.fatal = str(error)
            self.stop()
            return
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("share consumer error: %s", error)
