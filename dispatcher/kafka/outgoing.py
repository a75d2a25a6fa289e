"""A record the writer hands to Kafka, and what it writes instead of one Kafka refuses as too
large: the same record without the event's value, so that its pair still ends.

Which refusals are for good: librdkafka says so by error code. MSG_SIZE_TOO_LARGE (raised by
`produce()` itself past the producer's `message.max.bytes`, or reported by the broker past the
topic's `max.message.bytes`) and RECORD_LIST_TOO_LARGE are about the record: it will never be
taken as it is, so it is made smaller (a bundle is split into its pairs' tier records first:
the writer does that). Every other error is produced again until Kafka takes it (the queue full,
the broker away, a topic missing or not allowed to us: an operator can mend those), counted in
`dispatcher_outcome_records_refused_total`: nothing is dropped that could still be written.
Unless the producer itself failed for good (a librdkafka fatal error, `is_fatal`): it writes
nothing any more, so nothing is produced again, and the worker stops (kafka/producing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from confluent_kafka import KafkaError

from dispatcher.model.event import Headers
from dispatcher.model.outcome import HEADER_PREFIXES, VALUE_OMITTED
from dispatcher.model.values import quick_init

TOO_LARGE = frozenset((KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE))


@quick_init
@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def size(self) -> int:
        """About what Kafka counts of it: key, value and headers."""
        headers = sum(len(name) + len(value or b"") for name, value in self.headers)
        return len(self.key or b"") + len(self.value or b"") + headers


def too_large(error: Any) -> bool:
    """Whether a librdkafka error (a `KafkaError`) refuses the record for its size: for good."""
    return isinstance(error, KafkaError) and error.code() in TOO_LARGE


def is_fatal(error: Any) -> TypeGuard[KafkaError]:
    """Whether a librdkafka error says the producer failed for good: the error itself (raised by
    `poll()`, its `fatal()` set: an idempotent producer's broken sequence, say) or `_FATAL`,
    what `produce()` and a delivery report answer once it has."""
    return isinstance(error, KafkaError) and (error.fatal() or error.code() == KafkaError._FATAL)


def smaller(outgoing: OutgoingRecord, error: Any) -> OutgoingRecord | None:
    """`outgoing` with less in it, for a Kafka that refused it as too large; None when there is
    nothing left to leave out. First the event's value goes (key and headers stay: the
    `dispatcher.source.*` headers say where the original is); then, were that still too large,
    its key and its own headers too, leaving only the dispatcher's. `dispatcher.value.omitted`
    says what was left out and why; a record with it never decodes as the event."""
    if outgoing.value is not None:
        why = f"too large for Kafka ({_reason(error)}): {outgoing.size} bytes"
        return OutgoingRecord(
            outgoing.topic, outgoing.key, None, (*outgoing.headers, (VALUE_OMITTED, why.encode()))
        )
    ours = tuple((k, v) for k, v in outgoing.headers if k.startswith(HEADER_PREFIXES))
    if outgoing.key is None and ours == outgoing.headers:
        return None
    return OutgoingRecord(outgoing.topic, None, None, ours)


def where(outgoing: OutgoingRecord) -> str:
    """`topic[partition]@offset` of the input record a dead letter or tier record stands for."""
    headers = dict(outgoing.headers)
    place = (headers.get(f"dispatcher.source.{n}") for n in ("topic", "partition", "offset"))
    topic, partition, offset = (b"?" if p is None else p for p in place)
    return f"{topic.decode(errors='replace')}[{partition.decode()}]@{offset.decode()}"


def _reason(error: Any) -> str:
    return error.str() if isinstance(error, KafkaError) else str(error)
