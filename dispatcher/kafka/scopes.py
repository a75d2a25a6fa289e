"""The `kafka:` settings each kind of client reads.

`kafka:` is one section for every client a worker makes (consumers, producers, admin clients),
as users write it: `session.timeout.ms` beside `linger.ms`. librdkafka ignores a property meant
for the other kind of client, but warns of it (CONFWARN) on every client it makes, so a worker
with faster failover set logged a warning per such property and client at each start. Each
client is given only the properties of its kind; an admin client is a producer to librdkafka.

The tables are the global and topic properties that librdkafka's CONFIGURATION.md marks C
(consumer) or P (producer), aliases included, less the callbacks (no YAML can set one).

A share consumer (queue mode) is a consumer that refuses outright, with a ValueError, the
properties of a consumer group's membership and fetching that a share group's broker decides
(`SHARE_REFUSES`, as librdkafka 2.16 refuses them): a worker in queue mode still has consumer
groups (the retry tiers, the operations topic) that take them, so they go to those only.
"""

from __future__ import annotations

from typing import Any, Literal

from dispatcher.config.settings import Settings

Kind = Literal["consumer", "producer", "share"]

CONSUMER_ONLY = frozenset(
    {
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "max.poll.records",
        "enable.auto.commit",
        "auto.commit.enable",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "share.acknowledgement.mode",
        "consume.callback.max.messages",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
    }
)

PRODUCER_ONLY = frozenset(
    {
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.ms",
        "linger.ms",
        "message.send.max.retries",
        "retries",
        "queue.buffering.backpressure.threshold",
        "compression.codec",
        "compression.type",
        "compression.level",
        "batch.num.messages",
        "batch.size",
        "delivery.report.only.error",
        "sticky.partitioning.linger.ms",
        "request.required.acks",
        "acks",
        "request.timeout.ms",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "queuing.strategy",
        "produce.offset.report",
        "partitioner",
    }
)

SHARE_REFUSES = frozenset(
    {
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "enable.auto.commit",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.queue.backoff.ms",
        "fetch.error.backoff.ms",
        "isolation.level",
        "enable.partition.eof",
        "consume.callback.max.messages",
    }
)

_OTHERS: dict[Kind, frozenset[str]] = {
    "consumer": PRODUCER_ONLY,
    "producer": CONSUMER_ONLY,
    "share": PRODUCER_ONLY | SHARE_REFUSES,
}


def client_settings(settings: Settings, kind: Kind) -> dict[str, Any]:
    """The librdkafka settings of `kafka:` (secrets revealed) that a client of `kind` reads."""
    others = _OTHERS[kind]
    return {k: v for k, v in settings.kafka_config().items() if k not in others}
