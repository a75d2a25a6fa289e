"""Hand records to librdkafka and see each one acknowledged, whatever Kafka answers: a full
queue waits, a refusal is produced again, a record too large for Kafka is written smaller
(kafka/outgoing.py), a bundle as its pairs' tier records. Nothing raises out of here to end a
task or a thread, and every record's completion runs, on the thread that polls the producer.

`produce()` is called from the delivery loop and from the consumer thread; the records to
produce again wait in a deque (its appends and pops are atomic), which the consumer thread
works off each turn (`flush_unsent`).

A record waiting to be produced again is dropped once the partition it came from is no longer
this worker's (revoked or lost): its new owner hands the same pairs off itself, and a late
record from here would duplicate a tier record, and a webhook call. `owner` tells: it names
the partition's current generation (an intake loop's tracker of it), and each record keeps
the generation it was written in.

A producer that failed for good (librdkafka's fatal error, which confluent-kafka raises from
`poll()` and `flush()` rather than telling its error callback) never writes again: `poll` and
`flush` keep the error in `fatal` instead of raising it out of the polling thread (`Polled`,
kafka/polled.py, which every producer of the dispatcher is polled through), and
from then on nothing is produced, or produced again. The records not acknowledged are dropped
with their completions, so their pairs never end and their offsets are never committed: the
intake loop stops the worker (`WiredLoop.producer_failed`), and the partitions' next owner
delivers them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from dispatcher.kafka.outgoing import OutgoingRecord, is_fatal, smaller, too_large, where
from dispatcher.kafka.polled import Polled
from dispatcher.logs import REPEAT_WINDOW, Repeats
from dispatcher.metrics import Metrics
from dispatcher.model.event import Record

log = logging.getLogger(__name__)
# a broker gone for `message.timeout.ms` fails every record in flight at once: the same line
# for each of thousands of records, said once a window with the count of the rest
log.addFilter(Repeats(REPEAT_WINDOW))
Done = Callable[[], None]
Singles = Callable[[], list[tuple[OutgoingRecord, Done]]]
Owner = tuple[str, int, object | None]  # a consumed partition, and its generation then


class Producing(Polled):
    """The producing half of a writer: `producer` and its refusals (see the module)."""

    def __init__(self, producer: Any, metrics: Metrics) -> None:
        super().__init__(producer)
        self.metrics = metrics
        self._unsent: deque[Acknowledgement] = deque()  # to produce again, from either thread
        self._given_up: deque[Done] = deque()  # completions to run on the polling thread
        self._oversized: list[tuple[Acknowledgement, Any]] = []  # reported too large (`refused`)
        # (topic, partition) -> the partition's generation, None once it is not ours; None:
        # every partition stays ours (queue mode, a replay: no partitions to lose)
        self.owner: Callable[[str, int], object | None] | None = None
        self._disowned = 0

    def owner_of(self, record: Record) -> Owner | None:
        """The partition `record` was consumed from, with its generation now (`owner`)."""
        owner = self.owner
        if owner is None:
            return None
        return (record.topic, record.partition, owner(record.topic, record.partition))

    def _owned(self, ack: Acknowledgement) -> bool:
        """Whether `ack`'s record is still wanted: its partition is this worker's, as then."""
        owned = ack.owner
        if owned is None or self.owner is None:
            return True
        topic, partition, generation = owned
        return generation is not None and self.owner(topic, partition) is generation

    async def _produce_when_room(self, acks: list[Acknowledgement]) -> None:
        for ack in acks:
            while not self._try_produce(ack):
                await asyncio.sleep(0.005)  # the local queue is full: let acks drain it

    def write_now(
        self, records: list[OutgoingRecord], done: Done, source: Record | None = None
    ) -> None:
        """Like `put`, from the polling thread (no event loop): queue what does not fit.
        `source`: the consumed record they end (whose partition may be lost meanwhile)."""
        acked = after(len(records), done)
        owner = None if source is None else self.owner_of(source)
        for outgoing in records:
            self._send(Acknowledgement(self, outgoing, acked, owner=owner))

    def flush_unsent(self) -> None:
        """Retry records that did not fit or failed, and end those given up (called from the
        polling thread, where completions run). Once the producer failed for good, what
        waits is dropped instead: nothing is written any more."""
        if self._fatal is not None:
            self._unsent.clear()
            self._oversized.clear()
        if self._oversized:
            self._shrink_oversized()
        unsent = self._unsent
        for _ in range(len(unsent)):
            ack = unsent.popleft()
            if not self._owned(ack):
                self._disowned += 1
            elif not self._try_produce(ack):
                unsent.append(ack)
        if self._disowned:
            log.info(
                "%d outcome record(s) not written: their partition left this worker, whose new "
                "owner writes its own",
                self._disowned,
            )
            self._disowned = 0
        while self._given_up:
            self._given_up.popleft()()

    @property
    def unsent(self) -> int:
        return len(self._unsent)

    def refused(self, ack: Acknowledgement, err: Any) -> None:
        """A record Kafka did not take, in a delivery report: one too large waits for the turn's
        end (`_shrink_oversized`); any other is counted, logged, and queued to be produced
        again. Dropped once the producer failed for good."""
        if is_fatal(err):
            self.failed_for_good(err)
        if self._fatal is not None:
            return
        if too_large(err):
            self._oversized.append((ack, err))
            return
        self._again(ack, err)

    def _again(self, ack: Acknowledgement, err: Any) -> None:
        topic = ack.outgoing.topic
        self.metrics.outcome_records_refused.labels(topic).inc()
        log.warning("record to %s not acknowledged (%s); producing it again", topic, err)
        self._unsent.append(ack)

    def _shrink_oversized(self) -> None:
        """The records the broker reported too large since the last turn, per topic: the
        largest is written smaller, the others again as they were. librdkafka does not split
        a batch the broker refuses, so every record of it has the error, a small one batched
        with the large one too; each turn takes the largest out, until the rest fit."""
        oversized, self._oversized = self._oversized, []
        by_topic: dict[str, list[tuple[Acknowledgement, Any]]] = {}
        for ack, err in oversized:
            if self._owned(ack):
                by_topic.setdefault(ack.outgoing.topic, []).append((ack, err))
            else:
                self._disowned += 1
        for refused in by_topic.values():
            largest = max(refused, key=lambda item: item[0].outgoing.size)
            for ack, err in refused:
                if ack is largest[0]:
                    self._too_large(ack, err)
                else:
                    self._again(ack, err)

    def _too_large(self, ack: Acknowledgement, err: Any) -> None:
        """Kafka refused `ack`'s record for good, for its size: a bundle goes as its pairs' tier
        records instead; any other record without the event's value (`outgoing.smaller`); one
        with nothing left to leave out (never seen: only the dispatcher's headers remain) is
        given up, and its pair ends, so that its partition goes on."""
        outgoing = ack.outgoing
        self.metrics.outcome_records_refused.labels(outgoing.topic).inc()
        if ack.singles is not None:
            singles = ack.singles()
            log.warning(
                "bundle to %s refused as too large (%s): its %d pairs go as tier records of "
                "their own",
                outgoing.topic,
                err,
                len(singles),
            )
            for single, done in singles:
                self._send(Acknowledgement(self, single, done, owner=ack.owner))
            return
        less = smaller(outgoing, err)
        if less is None:
            log.error(
                "record to %s refused as too large (%s) even without the event; given up (the "
                "event stays at its source %s)",
                outgoing.topic,
                err,
                where(outgoing),
            )
            self._given_up.append(ack.acked)
            return
        log.warning(
            "record to %s refused as too large (%s): written without the event's %s, which "
            "stays at its source %s",
            outgoing.topic,
            err,
            "value" if outgoing.value is not None else "key and headers",
            where(outgoing),
        )
        ack.outgoing = less
        self._send(ack)

    def _send(self, ack: Acknowledgement) -> None:
        """Produce `ack`'s record, or queue it to be produced again when there is no room."""
        if not self._try_produce(ack):
            self._unsent.append(ack)

    def _try_produce(self, ack: Acknowledgement) -> bool:
        """Hand `ack`'s record to the producer; False when its queue has no room now. What
        `produce()` refuses at once (KafkaException) is dealt with as a delivery report's
        error would be (`refused`): it is never let out to end a task or a thread. Once the
        producer failed for good, the record is dropped (True: nothing to wait for)."""
        if self._fatal is not None:
            return True
        outgoing = ack.outgoing
        try:
            self.producer.produce(
                outgoing.topic,
                value=outgoing.value,
                key=outgoing.key,
                headers=list(outgoing.headers),
                on_delivery=ack,  # stamped by librdkafka as it takes the record
            )
        except BufferError:
            return False
        except KafkaException as exc:  # too large (`produce()` measures it alone), or fatal
            error = exc.args[0] if exc.args else KafkaError(KafkaError._FAIL)
            if is_fatal(error):
                self.failed_for_good(error)
            elif too_large(error):
                self._too_large(ack, error)
            else:
                self._again(ack, error)
        return True


class Acknowledgement:
    """The delivery report handler of one record: `acked()` once Kafka has it; never lost, a
    record that failed to reach Kafka goes back to its writer (`refused`) to be produced again,
    or smaller. `singles`, on a bundle: its pairs' tier records, each with its completion;
    `owner`: the consumed partition it ends a pair of, and the partition's generation then.

    An object rather than a closure: a closure that queues itself refers to itself through its
    cell, and that cycle (with the record and the pair's completion in it) was left for the
    garbage collector after every record, ~12 objects a delivery."""

    __slots__ = ("acked", "outgoing", "owner", "singles", "writer")

    def __init__(
        self,
        writer: Producing,
        outgoing: OutgoingRecord,
        acked: Done,
        singles: Singles | None = None,
        owner: Owner | None = None,
    ) -> None:
        self.writer = writer
        self.outgoing = outgoing
        self.acked = acked
        self.singles = singles
        self.owner = owner

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.acked()
            return
        self.writer.refused(self, err)


def after(count: int, done: Done) -> Done:
    """A callback that runs `done` on its `count`-th call: one ack per record of a result."""
    remaining = [count]

    def acked() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            done()

    return acked
