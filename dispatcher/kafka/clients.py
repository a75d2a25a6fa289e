"""Kafka clients for the worker: configuration, the reachability check, output topics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, KafkaUnavailable
from dispatcher.kafka.scopes import client_settings
from dispatcher.logs import KAFKA

OUTPUT_PARTITIONS = 6
SHARE_POLL_RECORDS = 200
STATISTICS_MS = 5000  # consumers' statistics (lag, queue mode's readiness), unless `kafka:` says
BROKER_MESSAGE_MAX_BYTES = 1_048_588  # Kafka's default `message.max.bytes` (a record batch)
PROBE_SLICE = 1.0  # seconds of the reachability check between two polls of its log lines
Client = TypeVar("Client")


def made(
    kind: Callable[[dict[str, Any]], Client], config: dict[str, Any], settings: Settings
) -> Client:
    """A librdkafka client of `config`. What librdkafka refuses to make one of (a misspelt
    property under `kafka:`, a value of the wrong type, a combination it does not take) is a
    `ConfigError` naming it, the secrets of `kafka:` masked: exit 1 with one line, not a
    traceback."""
    try:
        return kind(config)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError) or error.code() != KafkaError._INVALID_ARG:
            raise
        said = error.str()
    except ValueError as exc:  # a property a share consumer does not take (`SHARE_REFUSES`)
        said = str(exc).split(". %", 1)[0]  # librdkafka's log lines may follow the message
    for value in settings.kafka.values():
        if isinstance(value, Secret) and value.reveal():
            said = said.replace(value.reveal(), "***")
    raise ConfigError(f"kafka: {said}") from None


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """At-least-once consumption: offsets stored only by us, committed periodically and on exit.
    `kafka:` may change the tuning (first); what at-least-once rests on it may not (after)."""
    return {
        "auto.commit.interval.ms": 250,
        "queued.max.messages.kbytes": 16384,
        **client_settings(settings, "consumer"),
        "group.id": group_id,
        "partition.assignment.strategy": "cooperative-sticky",  # the rebalances of the engine
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
        "auto.offset.reset": "earliest",  # a new group delivers what is there, skips nothing
        "statistics.interval.ms": statistics_interval(settings),  # the consumer lag metric
        "logger": KAFKA,
        **extra,
    }


def share_consumer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Queue mode: a member of the share group `group_id`, acknowledging each record itself.
    A poll's records are worked off before the next poll; `max.poll.records` (which the
    broker honours per producer batch) bounds them so that records spread over the members."""
    return {
        "max.poll.records": SHARE_POLL_RECORDS,
        **client_settings(settings, "share"),
        "group.id": settings.group_id,
        "share.acknowledgement.mode": "explicit",
        "statistics.interval.ms": statistics_interval(settings),  # readiness (`ShareLoop`)
        "logger": KAFKA,
        **extra,
    }


def statistics_interval(settings: Settings) -> int:
    """How often (ms) a consumer reports its statistics, which the lag metric and queue mode's
    readiness are read from: `kafka:`'s `statistics.interval.ms` when above 0, else
    `STATISTICS_MS` (0 would switch them off: no lag, and a share worker never ready)."""
    given: Any = settings.kafka_config().get("statistics.interval.ms", STATISTICS_MS)
    try:
        interval = int(given)
    except (TypeError, ValueError):
        return STATISTICS_MS
    return interval if interval > 0 else STATISTICS_MS


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent, fully acknowledged writes of outcome records. `kafka:` may change the tuning
    (first); the guarantees it may not (after)."""
    return {
        "linger.ms": 20,  # a few hundred records per request at load, not a request per few
        "compression.type": "lz4",
        "queue.buffering.max.messages": 200_000,
        # the broker's own default (librdkafka's is 1,000,000): an event the broker took on
        # the input topic must not become unwritable here, in its dead letter or tier record,
        # for our client's limit alone (what the broker refuses is written without the value)
        "message.max.bytes": BROKER_MESSAGE_MAX_BYTES,
        **client_settings(settings, "producer"),
        "acks": "all",
        "enable.idempotence": True,
        "logger": KAFKA,
        **extra,
    }


def check_reachable(settings: Settings) -> AdminClient:
    """An admin client once the cluster answered; `KafkaUnavailable` after `kafka_wait`.

    Asked in slices, polled between them: the client's log lines (with the broker gone, a
    refused connection every 50-100 ms) reach our logging only when it is polled, in the
    log's format and a line said again counted, not written raw to stderr each time."""
    config: dict[str, Any] = {
        **client_settings(settings, "producer"),
        "socket.connection.setup.timeout.ms": 5000,
        "logger": KAFKA,
    }
    admin = made(AdminClient, config, settings)
    timeout = settings.kafka_wait
    deadline = time.monotonic() + timeout
    reason = "no answer"
    while (left := deadline - time.monotonic()) > 0:
        try:
            admin.list_topics(timeout=min(left, PROBE_SLICE))
        except KafkaException as exc:
            reason = exc.args[0].str() if exc.args else str(exc)
        else:
            return admin
        finally:
            admin.poll(0)
    # Destroy the client now: its threads would go on logging refused connections after (and
    # in the middle of) the one line the user should read last.
    del admin
    raise KafkaUnavailable(
        f"Kafka at {settings.bootstrap_servers} did not answer within {timeout:g}s"
        f" (kafka_wait): {reason}"
    )


def ensure_topics(
    admin: AdminClient,
    names: list[str],
    partitions: int = OUTPUT_PARTITIONS,
    timeout: float = 30.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create any of `names` that does not exist yet (clusters may forbid auto-creation), with
    its entry of `configs` (topic settings), and wait until each has leaders: a consumer
    subscribing earlier would not see it for minutes. A topic that exists is left as it is."""
    existing = set(admin.list_topics(timeout=10).topics)
    configs = configs or {}
    missing = [
        NewTopic(n, num_partitions=partitions, config=dict(configs.get(n, {})))
        for n in names
        if n not in existing
    ]
    if not missing:
        return
    for future in admin.create_topics(missing, request_timeout=15).values():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + timeout
    while not all(_has_leaders(admin, topic.topic) for topic in missing):
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"topics {', '.join(t.topic for t in missing)} have no leaders")
        time.sleep(0.1)


def _has_leaders(admin: AdminClient, name: str) -> bool:
    topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(p.leader >= 0 for p in topic.partitions.values())
