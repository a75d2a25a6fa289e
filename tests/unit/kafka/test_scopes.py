"""Each client is given only the `kafka:` settings of its kind: librdkafka warns (CONFWARN) of
every property meant for the other kind, on every client a worker makes.

The tables are checked against the librdkafka that is installed: each property in them, given
alone to a client of the other kind, is warned of as the other kind's. Real clients, made with
no `bootstrap.servers` (they connect nowhere)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, ShareConsumer

from dispatcher.config.settings import Settings
from dispatcher.kafka.clients import consumer_config, producer_config, share_consumer_config
from dispatcher.kafka.scan import scan_config
from dispatcher.kafka.scopes import CONSUMER_ONLY, PRODUCER_ONLY, SHARE_REFUSES, client_settings

# a valid value of each property in the tables
SAMPLES: dict[str, Any] = {
    "group.id": "g",
    "group.instance.id": "i",
    "group.protocol": "classic",
    "group.protocol.type": "consumer",
    "group.remote.assignor": "uniform",
    "partition.assignment.strategy": "range",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "coordinator.query.interval.ms": 600000,
    "max.poll.interval.ms": 300000,
    "max.poll.records": 10,
    "enable.auto.commit": True,
    "auto.commit.enable": True,
    "auto.commit.interval.ms": 500,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "queued.min.messages": 1000,
    "queued.max.messages.kbytes": 1024,
    "fetch.wait.max.ms": 100,
    "fetch.queue.backoff.ms": 100,
    "fetch.message.max.bytes": 100000,
    "max.partition.fetch.bytes": 100000,
    "fetch.max.bytes": 1000000,
    "fetch.min.bytes": 1,
    "fetch.error.backoff.ms": 100,
    "isolation.level": "read_committed",
    "enable.partition.eof": True,
    "check.crcs": True,
    "share.acknowledgement.mode": "explicit",
    "consume.callback.max.messages": 10,
    "offset.store.method": "broker",
    "offset.store.path": ".",
    "offset.store.sync.interval.ms": -1,
    "transactional.id": "t",
    "transaction.timeout.ms": 60000,
    "enable.idempotence": True,
    "enable.gapless.guarantee": False,
    "queue.buffering.max.messages": 1000,
    "queue.buffering.max.kbytes": 1024,
    "queue.buffering.max.ms": 5,
    "linger.ms": 5,
    "message.send.max.retries": 3,
    "retries": 3,
    "queue.buffering.backpressure.threshold": 1,
    "compression.codec": "lz4",
    "compression.type": "lz4",
    "compression.level": 1,
    "batch.num.messages": 100,
    "batch.size": 100000,
    "delivery.report.only.error": False,
    "sticky.partitioning.linger.ms": 10,
    "request.required.acks": -1,
    "acks": "all",
    "request.timeout.ms": 30000,
    "message.timeout.ms": 30000,
    "delivery.timeout.ms": 30000,
    "queuing.strategy": "fifo",
    "produce.offset.report": True,
    "partitioner": "murmur2",
}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _warnings(kind: str, config: dict[str, Any]) -> list[str]:
    """The CONFWARN lines librdkafka logs as it makes a client of `kind` with `config`, but
    the one about the missing bootstrap servers."""
    handler = _Lines()
    logger = logging.getLogger(f"test-scopes-{kind}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        if kind == "producer":
            Producer({**config, "logger": logger}).poll(0)
        else:
            Consumer({"group.id": "g", **config, "logger": logger}).close()
    finally:
        logger.removeHandler(handler)
    return [
        line for line in handler.lines if "CONFWARN" in line and "bootstrap.servers" not in line
    ]


def test_every_property_has_a_sample_value() -> None:
    assert set(SAMPLES) == CONSUMER_ONLY | PRODUCER_ONLY
    assert not CONSUMER_ONLY & PRODUCER_ONLY


@pytest.mark.parametrize("name", sorted(CONSUMER_ONLY))
def test_librdkafka_takes_each_consumer_property_for_one(name: str) -> None:
    warnings = _warnings("producer", {name: SAMPLES[name]})
    assert any("is a consumer property" in line for line in warnings), warnings


@pytest.mark.parametrize("name", sorted(PRODUCER_ONLY))
def test_librdkafka_takes_each_producer_property_for_one(name: str) -> None:
    warnings = _warnings("consumer", {name: SAMPLES[name]})
    assert any("is a producer property" in line for line in warnings), warnings


def _settings(kafka: dict[str, Any]) -> Settings:
    return Settings(kafka={"bootstrap.servers": "", **kafka})


def test_a_client_gets_the_settings_of_its_kind_and_those_of_both() -> None:
    settings = _settings({"session.timeout.ms": 6000, "linger.ms": 5, "client.id": "d"})
    assert client_settings(settings, "consumer") == {
        "bootstrap.servers": "",
        "session.timeout.ms": 6000,
        "client.id": "d",
    }
    assert client_settings(settings, "producer") == {
        "bootstrap.servers": "",
        "linger.ms": 5,
        "client.id": "d",
    }


def test_the_workers_clients_warn_of_no_property_set_for_the_other_kind() -> None:
    """Faster failover and producer tuning side by side under `kafka:`, as the README suggests:
    without the split, each producer warned of both consumer properties, each consumer of the
    producer ones."""
    settings = _settings(
        {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "batch.size": 65536}
    )
    assert _warnings("producer", producer_config(settings)) == []
    assert _warnings("consumer", consumer_config(settings, "g")) == []
    assert _warnings("consumer", scan_config(settings)) == []
    assert "batch.size" not in share_consumer_config(settings)
    # the settings still reach the clients they are for
    assert consumer_config(settings, "g")["session.timeout.ms"] == 6000
    assert producer_config(settings)["batch.size"] == 65536


def test_a_share_consumer_is_made_whatever_consumer_settings_kafka_holds() -> None:
    """librdkafka refuses a share consumer the properties of a consumer group's membership
    (`session.timeout.ms` for faster failover, say): queue mode ended in a traceback at start.
    They still reach the worker's consumer groups (retry tiers, operations)."""
    settings = _settings({name: SAMPLES[name] for name in CONSUMER_ONLY - {"group.id"}})
    ShareConsumer(share_consumer_config(settings)).close()
    assert consumer_config(settings, "g")["session.timeout.ms"] == 6000


@pytest.mark.parametrize("name", sorted(SHARE_REFUSES))
def test_each_property_kept_from_a_share_consumer_is_one_it_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="share consumer"):
        ShareConsumer({"group.id": "g", name: SAMPLES[name]})
