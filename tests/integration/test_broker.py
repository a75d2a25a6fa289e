"""The test bed itself: the session's broker stores and serves records, and survives a restart."""

from __future__ import annotations

from collections.abc import Callable

from kafka_support import Outgoing, consume_all, produce

from dispatcher.devtools.broker import LocalKafka


def test_ten_records_come_back_in_order_with_keys_and_headers(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=3)
    sent = [Outgoing(value=f"v{i}", key=f"k{i % 3}", headers=(("n", str(i)),)) for i in range(10)]

    assert produce(kafka_bootstrap, topic, sent) == 10
    records = consume_all(kafka_bootstrap, topic, expected_count=10, timeout=30)

    assert sorted(r.value for r in records if r.value) == sorted(
        f"v{i}".encode() for i in range(10)
    )
    by_key: dict[bytes | None, list[int]] = {}
    for record in records:
        assert record.value is not None
        number = record.value[1:]
        assert record.header("n") == number
        by_key.setdefault(record.key, []).append(int(number))
    # One key, one partition, so each key's records keep the order they were sent in.
    assert by_key == {b"k0": [0, 3, 6, 9], b"k1": [1, 4, 7], b"k2": [2, 5, 8]}
    assert {r.partition for r in records} <= {0, 1, 2}


def test_topic_factory_makes_distinct_topics_with_the_partitions_asked_for(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    first, second = topic_factory(partitions=4), topic_factory()

    assert first != second
    produce(kafka_bootstrap, first, [Outgoing(value=b"x", partition=3)])
    (record,) = consume_all(kafka_bootstrap, first, expected_count=1, timeout=30)
    assert (record.partition, record.offset, record.value) == (3, 0, b"x")


def test_restart_keeps_data_and_bootstrap_address(
    local_kafka: LocalKafka, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka_bootstrap, topic, [f"before-{i}" for i in range(5)])

    assert local_kafka.restart() == kafka_bootstrap
    assert local_kafka.running()
    produce(kafka_bootstrap, topic, [f"after-{i}" for i in range(5)])

    records = consume_all(kafka_bootstrap, topic, expected_count=10, timeout=30)
    assert sorted(r.value for r in records if r.value) == sorted(
        f"{when}-{i}".encode() for when in ("before", "after") for i in range(5)
    )
