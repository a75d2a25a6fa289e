"""Write outcomes to Kafka: results, dead letters and retry-tier records, with acknowledgement.

`produce` is called from the delivery loop, and from the consumer thread for what it writes
itself (decode dead letters, pairs held back at intake); acknowledgements arrive on the thread
that polls the producer (the consumer thread), which is where each pair's completion is then
recorded. What Kafka answers, refusals included, is kafka/producing.py's to deal with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from dispatcher.config.settings import Settings, Topics
from dispatcher.errors import ErrorKind
from dispatcher.kafka.outgoing import OutgoingRecord
from dispatcher.kafka.producing import Acknowledgement, Done, Producing, after
from dispatcher.kafka.results import ResultSerializer, result_serializer
from dispatcher.metrics import Metrics
from dispatcher.model.bundle import bundle_entry, bundle_record
from dispatcher.model.deadletter import dead_letter_headers
from dispatcher.model.event import Record
from dispatcher.model.outcome import (
    Outcome,
    Source,
    original_headers,
    retry_headers,
)
from dispatcher.pipeline.retry import Handoff, Result

Item = TypeVar("Item")
BUNDLE_BYTES = 256 * 1024  # a tier bundle's value at most: records may have 1 MB by default


class OutcomeWriter(Producing):
    """Turns results into records and calls `done` once every record of a result is acked."""

    def __init__(
        self,
        producer: Any,
        topics: Topics,
        metrics: Metrics,
        serializer: ResultSerializer,
        bundles: bool = True,
    ) -> None:
        super().__init__(producer, metrics)
        self.bundles = bundles  # False: a tier record per pair, as readers before bundles need
        self.topics = topics
        self.serializer = serializer
        self._tier_topics = topics.retry_topics
        self._retries: dict[tuple[str, int], Any] = {}  # (hook, tier) -> its counter's child
        # exported from the start, at 0: the first refusal is an increase that alerts see
        for topic in (topics.results, topics.dead_letter, *topics.retry_topics):
            metrics.outcome_records_refused.labels(topic)

    def records_for(self, result: Result, record: Record) -> list[OutgoingRecord]:
        """The records that end (or hand off) a pair: a result, plus a dead letter or tier record."""
        if isinstance(result, Handoff):
            pair, last = result.pair, result.last
            headers = retry_headers(
                pair.hook.id,
                result.attempts,
                result.first_attempt_at,
                result.due_at,
                pair.source,
                pair.idempotency_key,
                last.kind or "",
                last.error or "",
                result.traceparent,
                result.tracestate,
            )
            topic = self._tier_topics[result.tier]
            return [
                OutgoingRecord(topic, record.key, record.value, original_headers(record) + headers)
            ]
        out = [
            OutgoingRecord(
                self.topics.results,
                result.event_id.encode(),
                self.serializer.serialize_outcome(result),
                (),
            )
        ]
        if result.outcome == "dead_lettered":
            headers = dead_letter_headers(result, record, failed_at=result.completed_at)
            out.append(OutgoingRecord(self.topics.dead_letter, record.key, record.value, headers))
        return out

    def count(self, result: Result) -> None:
        """Count a result in the metrics (once, when it is handed to Kafka)."""
        if isinstance(result, Handoff):
            self._retries_scheduled(result.pair.hook.id, result.tier).inc()
            return
        self.metrics.hook(result.hook_id).outcomes[result.outcome].inc()
        if result.outcome == "dead_lettered":
            self.metrics.dead_letters.labels(result.hook_id, result.error_kind or "unknown").inc()

    def _retries_scheduled(self, hook_id: str, tier: int) -> Any:
        """`dispatcher_retries_scheduled_total{hook, tier}`, its labels looked up once."""
        child = self._retries.get((hook_id, tier))
        if child is None:
            name = self._tier_topics[tier].rsplit(".", 1)[-1]
            child = self._retries[hook_id, tier] = self.metrics.retries_scheduled.labels(
                hook_id, name
            )
        return child

    async def write(self, result: Result, record: Record, done: Done) -> None:
        """Produce the records of `result`; `done` runs when all of them are acknowledged."""
        rest = self.put(result, record, done)
        if rest is not None:
            await rest

    def put(self, result: Result, record: Record, done: Done) -> Coroutine[Any, Any, None] | None:
        """`write`, with no coroutine when the producer's queue takes every record at once (a
        delivery's usual case): None then; else the coroutine that writes the rest as the
        queue makes room, to be awaited."""
        self.count(result)
        records = self.records_for(result, record)
        acked = done if len(records) == 1 else after(len(records), done)
        owner = self.owner_of(record)
        for index, outgoing in enumerate(records):
            ack = Acknowledgement(self, outgoing, acked, owner=owner)
            if not self._try_produce(ack):
                rest = [Acknowledgement(self, o, acked, owner=owner) for o in records[index + 1 :]]
                return self._produce_when_room([ack, *rest])
        return None

    def hand_off(self, handoffs: list[tuple[Handoff, Done]]) -> list[tuple[Handoff, Done]]:
        """Produce the hand-offs of pairs held back by an open circuit at once, on the delivery
        loop, without awaiting: those of one hook, tier, last error and consumed partition
        together, in tier bundles (model/bundle.py), a hand-off alone as a single tier record.
        Each `done` runs once its pair's record is acknowledged. Counted here. Returns the
        hand-offs the producer's local queue had no room for, to be written one by one
        (`write`). A bundle holds the pairs of one partition only: the partition's revoke
        drops what is unsent of it (`Producing.owner`), and no other's."""
        groups: dict[tuple[str, int, str, str, str, int], list[tuple[Handoff, Done]]] = {}
        for handoff, done in handoffs:
            last, record = handoff.last, handoff.pair.record
            key = (
                handoff.pair.hook.id,
                handoff.tier,
                last.kind or "",
                last.error or "",
                record.topic,
                record.partition,
            )
            groups.setdefault(key, []).append((handoff, done))
        refused: list[tuple[Handoff, Done]] = []
        for (hook_id, tier, kind, error, _topic, _partition), group in groups.items():
            owner = self.owner_of(group[0][0].pair.record)
            parts = _bundles(group, _handoff_record) if self.bundles else [[i] for i in group]
            for part in parts:
                if len(part) == 1:
                    handoff, done = part[0]
                    (outgoing,) = self.records_for(handoff, handoff.pair.record)
                    ack = Acknowledgement(self, outgoing, done, owner=owner)
                else:
                    outgoing = self._bundle(part, hook_id, tier, kind, error)
                    done = _each([each_done for _, each_done in part])
                    singles = functools.partial(self._handoff_singles, part)
                    ack = Acknowledgement(self, outgoing, done, singles, owner)
                if self._try_produce(ack):
                    self._retries_scheduled(hook_id, tier).inc(len(part))
                else:
                    refused.extend(part)
        return refused

    def _handoff_singles(
        self, part: list[tuple[Handoff, Done]]
    ) -> list[tuple[OutgoingRecord, Done]]:
        """The tier records of a bundle's hand-offs, each of its own (the bundle too large)."""
        return [(self.records_for(h, h.pair.record)[0], done) for h, done in part]

    def _bundle(
        self, part: list[tuple[Handoff, Done]], hook_id: str, tier: int, kind: str, error: str
    ) -> OutgoingRecord:
        entries = [
            bundle_entry(
                handoff.pair.record,
                original_headers(handoff.pair.record),
                handoff.attempts,
                handoff.first_attempt_at,
                handoff.pair.source,
                handoff.pair.idempotency_key,
                handoff.traceparent,
                handoff.tracestate,
            )
            for handoff, _ in part
        ]
        due_at = max(handoff.due_at for handoff, _ in part)
        headers, value = bundle_record(entries, hook_id, due_at, kind, error)
        return OutgoingRecord(self._tier_topics[tier], None, value, headers)

    def hold_back(
        self,
        hook_id: str,
        held: list[tuple[Record, str]],
        due_at: float,
        last: tuple[str, str],
        now: float,
        finish: Callable[[Record], None],
    ) -> None:
        """Hand the pairs of `hook_id` held back at intake (its circuit open; each an input
        record and the pair's idempotency key, no attempt yet) to the first retry tier, in
        bundles, from the consumer thread: what the producer's queue has no room for waits
        with the unsent records (`flush_unsent`). `last` is the error they carry (kind, text);
        `finish(record)` runs for each pair once its bundle is acknowledged. Counted here.
        A bundle holds the pairs of one partition only (see `hand_off`)."""
        kind, error = last
        partitions: dict[tuple[str, int], list[tuple[Record, str]]] = {}
        for item in held:
            partitions.setdefault((item[0].topic, item[0].partition), []).append(item)
        for of_partition in partitions.values():
            owner = self.owner_of(of_partition[0][0])
            for part in _bundles(of_partition, _held_record):
                entries = [
                    bundle_entry(
                        record,
                        original_headers(record),
                        0,
                        now,
                        Source(record.topic, record.partition, record.offset),
                        key,
                    )
                    for record, key in part
                ]
                headers, value = bundle_record(entries, hook_id, due_at, kind, error)
                outgoing = OutgoingRecord(self._tier_topics[0], None, value, headers)
                done = _each_record([r for r, _ in part], finish)
                singles = functools.partial(
                    self._held_singles, hook_id, part, due_at, last, now, finish
                )
                self._send(Acknowledgement(self, outgoing, done, singles, owner))
                self._retries_scheduled(hook_id, 0).inc(len(part))

    def _held_singles(
        self,
        hook_id: str,
        part: list[tuple[Record, str]],
        due_at: float,
        last: tuple[str, str],
        now: float,
        finish: Callable[[Record], None],
    ) -> list[tuple[OutgoingRecord, Done]]:
        """The tier records of pairs held at intake, each of its own (their bundle too large)."""
        kind, error = last
        tier = self._tier_topics[0]
        singles: list[tuple[OutgoingRecord, Done]] = []
        for record, key in part:
            source = Source(record.topic, record.partition, record.offset)
            headers = retry_headers(hook_id, 0, now, due_at, source, key, kind, error)
            headers = original_headers(record) + headers
            outgoing = OutgoingRecord(tier, record.key, record.value, headers)
            singles.append((outgoing, functools.partial(finish, record)))
        return singles


def outcome_writer(producer: Any, settings: Settings, metrics: Metrics) -> OutcomeWriter:
    """The writer of a worker or a replay: results in the configured `result_format`."""
    serializer = result_serializer(
        settings.result_format, settings.schema_registry, topic=settings.topics.results
    )
    return OutcomeWriter(producer, settings.topics, metrics, serializer, settings.retry_bundles)


def _each(dones: list[Done]) -> Done:
    """A callback that runs every one of `dones` (a bundle's pairs, acknowledged together)."""

    def acked() -> None:
        for done in dones:
            done()

    return acked


def _each_record(records: list[Record], finish: Callable[[Record], None]) -> Done:
    """A callback that runs `finish` for every one of `records` (a bundle held at intake)."""

    def acked() -> None:
        for record in records:
            finish(record)

    return acked


def _handoff_record(item: tuple[Handoff, Done]) -> Record:
    return item[0].pair.record


def _held_record(item: tuple[Record, str]) -> Record:
    return item[0]


def _bundles(group: list[Item], record_of: Callable[[Item], Record]) -> list[list[Item]]:
    """`group` in parts whose bundle stays under BUNDLE_BYTES (an event near that size alone)."""
    parts: list[list[Item]] = [[]]
    size = 0
    for item in group:
        record = record_of(item)
        # base64 of the key, value and headers, and a few hundred bytes of state
        grows = (len(record.key or b"") + len(record.value or b"")) * 4 // 3 + 400
        if record.headers:
            grows += sum(len(name) + len(value) * 4 // 3 + 8 for name, value in record.headers)
        if parts[-1] and size + grows > BUNDLE_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += grows
    return parts


def decode_failure_records(
    topics: Topics, record: Record, error: str, now: float, kind: ErrorKind = "decode"
) -> list[OutgoingRecord]:
    """The dead letter of a record that is not a valid event, or that taking in failed on
    (`kind` `internal`): no hook, so no result record."""
    outcome = Outcome(
        event_id="",
        event_type="",
        hook_id="",
        outcome="dead_lettered",
        attempts=0,
        idempotency_key="",
        source=Source(record.topic, record.partition, record.offset),
        first_attempt_at=now,
        completed_at=now,
        error_kind=kind,
        error=error,
    )
    headers = dead_letter_headers(outcome, record, failed_at=now)
    return [OutgoingRecord(topics.dead_letter, record.key, record.value, headers)]
