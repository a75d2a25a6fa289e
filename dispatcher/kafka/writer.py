"""Write outcomes to Kafka: results, dead letters and retry-tier records, with acknowledgement.

`produce` is called from the delivery loop, and from the consumer thread for what it writes
itself (decode dead letters, pairs held back at intake); acknowledgements arrive on the thread
that polls the producer (the consumer thread), which is where each pair's completion is then
recorded. What Kafka answers, refusals included, is kafka/producing.py's to deal with; how pairs
held back are packed into tier bundles, kafka/bundling.py's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.errors import ErrorKind
from dispatcher.kafka.bundling import (
    Holding,
    bundle_parts,
    finish_all,
    handoff_bundle,
    handoff_groups,
    handoff_record,
    held_bundle,
    held_record,
    held_singles,
    run_all,
)
from dispatcher.kafka.outgoing import OutgoingRecord
from dispatcher.kafka.producing import Acknowledgement, Done, Producing, after
from dispatcher.kafka.results import ResultSerializer, result_serializer
from dispatcher.metrics import Metrics
from dispatcher.model.deadletter import dead_letter_headers
from dispatcher.model.deferral import deferred_headers
from dispatcher.model.event import Record
from dispatcher.model.outcome import (
    Outcome,
    RetryState,
    Source,
    original_headers,
    retry_headers,
)
from dispatcher.pipeline.retry import Handoff, Result


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
                pair.hook.tenant,
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
        refused: list[tuple[Handoff, Done]] = []
        groups = handoff_groups(handoffs)
        for (hook_id, tier, kind, error, _topic, _partition), group in groups.items():
            owner = self.owner_of(group[0][0].pair.record)
            parts = bundle_parts(group, handoff_record) if self.bundles else [[i] for i in group]
            for part in parts:
                if len(part) == 1:
                    handoff, done = part[0]
                    (outgoing,) = self.records_for(handoff, handoff.pair.record)
                    ack = Acknowledgement(self, outgoing, done, owner=owner)
                else:
                    topic = self._tier_topics[tier]
                    outgoing = handoff_bundle(part, topic, hook_id, kind, error)
                    done = run_all([each_done for _, each_done in part])
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

    def hold_back(
        self,
        hook_id: str,
        held: list[tuple[Record, str]],
        due_at: float,
        last: tuple[str, str],
        now: float,
        finish: Callable[[Record], None],
        hook_tenant: str | None = None,
    ) -> None:
        """Hand the pairs of `hook_id` (of `hook_tenant`) held back at intake (its circuit
        open; each an input record and the pair's idempotency key, no attempt yet) to the first
        retry tier, in bundles, from the consumer thread: what the producer's queue has no room
        for waits with the unsent records (`flush_unsent`). `last` is the error they carry
        (kind, text); `finish(record)` runs for each pair once its bundle is acknowledged.
        Counted here. A bundle holds the pairs of one partition only (see `hand_off`)."""
        holding = Holding(self._tier_topics[0], hook_id, due_at, last, now, hook_tenant)
        partitions: dict[tuple[str, int], list[tuple[Record, str]]] = {}
        for item in held:
            partitions.setdefault((item[0].topic, item[0].partition), []).append(item)
        for of_partition in partitions.values():
            owner = self.owner_of(of_partition[0][0])
            for part in bundle_parts(of_partition, held_record):
                outgoing = held_bundle(part, holding)
                done = finish_all([r for r, _ in part], finish)
                singles = functools.partial(held_singles, part, holding, finish)
                self._send(Acknowledgement(self, outgoing, done, singles, owner))
                self._retries_scheduled(hook_id, 0).inc(len(part))


def outcome_writer(producer: Any, settings: Settings, metrics: Metrics) -> OutcomeWriter:
    """The writer of a worker or a replay: results in the configured `result_format`."""
    serializer = result_serializer(
        settings.result_format, settings.schema_registry, topic=settings.topics.results
    )
    return OutcomeWriter(producer, settings.topics, metrics, serializer, settings.retry_bundles)


def decode_failure_records(
    topics: Topics,
    record: Record,
    error: str,
    now: float,
    kind: ErrorKind = "decode",
    state: RetryState | None = None,
    hook_tenant: str | None = None,
) -> list[OutgoingRecord]:
    """The dead letter of a record that is not a valid event, or that taking in failed on
    (`kind` `internal`): no event, so no result record. No hook either, but a retry-tier
    pair's (`state`), whose hook, webhook-id, attempts and source the letter keeps, with that
    hook's tenant (`hook_tenant`)."""
    if state is None:  # no pair: the record is where its event entered
        here = Source.of(record)
        state = RetryState("", 0, first_attempt_at=now, due_at=now, source=here, idempotency_key="")
    outcome = Outcome(
        event_id="",
        event_type="",
        hook_id=state.hook_id,
        outcome="dead_lettered",
        attempts=state.attempts,
        idempotency_key=state.idempotency_key,
        source=state.source,
        first_attempt_at=state.first_attempt_at,
        completed_at=now,
        error_kind=kind,
        error=error,
        hook_tenant=hook_tenant,
    )
    headers = dead_letter_headers(outcome, record, failed_at=now)
    return [OutgoingRecord(topics.dead_letter, record.key, record.value, headers)]


def deferred_records(topics: Topics, record: Record, why: str, now: float) -> list[OutgoingRecord]:
    """The first retry tier's record of input `record`, whose event cannot be read just now
    (`why`: the schema registry is away; model/deferral.py). It is due at once: the tier's
    consumer takes it in as it reads it, and holds the tier's partition while the registry
    is still away, as it holds any tier record's."""
    headers = deferred_headers(record, now, why)
    return [OutgoingRecord(topics.retry_topic(0), record.key, record.value, headers)]
