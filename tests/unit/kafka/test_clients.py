"""What `kafka:` may change in the clients a worker makes, and what it may not."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, ShareConsumer

from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, KafkaUnavailable
from dispatcher.kafka.clients import (
    check_reachable,
    consumer_config,
    made,
    producer_config,
    share_consumer_config,
)


def settings(kafka: dict[str, Any]) -> Settings:
    return Settings(kafka={"bootstrap.servers": "", **kafka})


def test_the_tuning_is_the_users_to_change() -> None:
    given = settings({"linger.ms": 50, "compression.type": "zstd", "auto.commit.interval.ms": 1000})
    assert producer_config(given)["linger.ms"] == 50
    assert producer_config(given)["compression.type"] == "zstd"
    assert consumer_config(given, "g")["auto.commit.interval.ms"] == 1000
    untouched = settings({})
    assert producer_config(untouched)["linger.ms"] == 20
    assert consumer_config(untouched, "g")["auto.commit.interval.ms"] == 250


@pytest.mark.parametrize(("given", "used"), [(1000, 1000), ("2000", 2000), (0, 5000), (None, 5000)])
def test_the_statistics_interval_is_the_users_unless_it_would_switch_them_off(
    given: Any, used: int
) -> None:
    """The lag metric and queue mode's readiness come from the statistics: a faster refresh is
    the user's to ask for (it was 5 s whatever `kafka:` said); 0 would leave a share worker
    never ready, so it is not taken."""
    configured = settings({} if given is None else {"statistics.interval.ms": given})
    assert consumer_config(configured, "g")["statistics.interval.ms"] == used
    assert share_consumer_config(configured)["statistics.interval.ms"] == used


def test_what_at_least_once_rests_on_is_not() -> None:
    given = settings(
        {
            "acks": 1,
            "enable.idempotence": False,
            "enable.auto.offset.store": True,
            "auto.offset.reset": "latest",
            "group.id": "theirs",
        }
    )
    producer, consumer = producer_config(given), consumer_config(given, "g")
    assert (producer["acks"], producer["enable.idempotence"]) == ("all", True)
    assert consumer["enable.auto.offset.store"] is False
    assert (consumer["auto.offset.reset"], consumer["group.id"]) == ("earliest", "g")


def test_an_alias_of_a_guarantee_is_overridden_too() -> None:
    """librdkafka applies properties in order, and an alias sets the same property: ours come
    after the user's, whatever name theirs goes by."""
    keys = list(producer_config(settings({"request.required.acks": 1})))
    assert keys.index("request.required.acks") < keys.index("acks")


def test_the_producer_takes_a_record_as_large_as_the_broker_does_by_default() -> None:
    """librdkafka's own limit (1,000,000 bytes) is below the broker's (1,048,588): an event of
    999 KB, taken on the input topic, would have made a dead letter our client refuses."""
    from confluent_kafka import Producer

    config = producer_config(Settings())
    assert config["message.max.bytes"] == 1_048_588
    config.pop("logger")
    producer = Producer({**config, "bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    try:
        producer.produce("t", value=b"x" * 1_040_000, headers=[("dispatcher.x", b"y" * 2000)])
    finally:
        producer.purge()
    given = Settings(kafka={"message.max.bytes": 2_000_000})
    assert producer_config(given)["message.max.bytes"] == 2_000_000


def test_a_client_librdkafka_refuses_to_make_is_a_configuration_error_with_secrets_masked() -> None:
    """A misspelt property or a value of the wrong type under `kafka:` stops a command with one
    line (exit 1), not a traceback; a secret the message quotes is masked."""
    given = Settings(kafka={"bootstrap.servers": "", "sasl.password": Secret("hunter2-pw")})

    def refusing(config: dict[str, Any]) -> None:
        said = 'Invalid value "hunter2-pw" for configuration property "sasl.password"'
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG, said))

    with pytest.raises(ConfigError) as refused:
        made(refusing, {}, given)
    assert (
        str(refused.value)
        == 'kafka: Invalid value "***" for configuration property "sasl.password"'
    )

    with pytest.raises(ConfigError, match=r'kafka: No such configuration property: "no\.such"'):
        made(Producer, {"no.such": 1}, given)

    share = {"group.id": "g", "session.timeout.ms": 6000}  # one the share consumer refuses
    with pytest.raises(ConfigError) as refused:
        made(ShareConsumer, share, given)
    assert str(refused.value).startswith("kafka: Failed to create share consumer: `session")
    assert "%" not in str(refused.value)  # librdkafka's log lines after it left out

    def unreachable(config: dict[str, Any]) -> None:  # not the configuration's fault: as it is
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "down"))

    with pytest.raises(KafkaException):
        made(unreachable, {}, given)


def test_the_reachability_check_gives_up_after_kafka_wait_naming_it() -> None:
    """`kafka_wait` (15 s by default) is how long a worker or a command waits for an unreachable
    cluster before it exits 3; the line it exits with names the setting that would wait longer."""
    with socket.socket() as bound:  # a loopback port nobody listens on: refused at once
        bound.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{bound.getsockname()[1]}"
        given = Settings(kafka={"bootstrap.servers": closed}, kafka_wait=0.5)
        with pytest.raises(KafkaUnavailable) as raised:
            check_reachable(given)
    assert str(raised.value).startswith(
        f"Kafka at {closed} did not answer within 0.5s (kafka_wait): "
    )
