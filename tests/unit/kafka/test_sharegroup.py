"""A share group's start: its limits are read, and a group nobody configured starts earliest."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupType, KafkaError, KafkaException
from confluent_kafka.admin._resource import ResourceType

from dispatcher.errors import ConfigError
from dispatcher.kafka.sharegroup import ShareLimits, prepare_share_group, refuse_consumer_group

DEFAULT, GROUP, STATIC = 5, 8, 4  # ConfigSource.DEFAULT_CONFIG, GROUP_CONFIG, STATIC_BROKER


@dataclass
class Entry:
    value: str
    source: int


def done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    if isinstance(value, Exception):
        future.set_exception(value)
    else:
        future.set_result(value)
    return future


class Admin:
    """A cluster of brokers 1 and 2: the group's configs, and broker 1's when asked."""

    def __init__(
        self,
        entries: dict[str, Entry],
        alter: Exception | None = None,
        broker: dict[str, Entry] | Exception | None = None,
    ) -> None:
        self.entries = entries
        self.alter = alter
        self.broker = broker if broker is not None else {}
        self.altered: list[dict[str, str]] = []
        self.described: list[tuple[ResourceType, str]] = []

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(brokers={2: None, 1: None})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        (resource,) = resources
        self.described.append((resource.restype, resource.name))
        if resource.restype == ResourceType.BROKER:
            return {resource: done(self.broker)}
        return {resource: done(self.entries)}

    def incremental_alter_configs(self, resources: list[Any], request_timeout: float) -> Any:
        (resource,) = resources
        self.altered.append({e.name: e.value for e in resource.incremental_configs})
        return {resource: done(self.alter)}


def test_a_group_nobody_configured_starts_at_the_earliest_record_and_its_limits_are_read() -> None:
    admin = Admin(
        {
            "share.auto.offset.reset": Entry("latest", DEFAULT),
            "share.delivery.count.limit": Entry("3", GROUP),
            "share.record.lock.duration.ms": Entry("20000", DEFAULT),
        }
    )

    assert prepare_share_group(admin, "g") == ShareLimits(delivery_count_limit=3, lock_seconds=20)
    assert admin.altered == [{"share.auto.offset.reset": "earliest"}]


def test_a_start_position_set_on_the_group_is_kept() -> None:
    admin = Admin({"share.auto.offset.reset": Entry("latest", GROUP)})

    assert prepare_share_group(admin, "g") == ShareLimits()
    assert admin.altered == []


def test_without_the_right_to_alter_the_group_the_worker_names_the_setting_and_runs_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    admin = Admin({"share.auto.offset.reset": Entry("latest", DEFAULT)}, alter=refused)

    with caplog.at_level(logging.WARNING):
        assert prepare_share_group(admin, "g") == ShareLimits()
    assert "share.auto.offset.reset=earliest" in caplog.text
    assert "ALTER_CONFIGS" in caplog.text


def test_a_limit_the_group_does_not_set_is_the_brokers() -> None:
    """A 4.2 broker has no group-level limits at all; on 4.3 the group's entry is a default."""
    broker = {
        "group.share.delivery.count.limit": Entry("3", STATIC),
        "group.share.record.lock.duration.ms": Entry("15000", STATIC),
    }
    on_42 = Admin({"share.auto.offset.reset": Entry("earliest", GROUP)}, broker=broker)
    on_43 = Admin(
        {
            "share.auto.offset.reset": Entry("earliest", GROUP),
            "share.delivery.count.limit": Entry("5", DEFAULT),
            "share.record.lock.duration.ms": Entry("30000", DEFAULT),
        },
        broker=broker,
    )

    for admin in (on_42, on_43):
        assert prepare_share_group(admin, "g") == ShareLimits(3, 15)
        assert (ResourceType.BROKER, "1") in admin.described


def test_a_limit_set_on_the_group_wins_and_the_brokers_are_not_asked() -> None:
    admin = Admin(
        {
            "share.auto.offset.reset": Entry("earliest", GROUP),
            "share.delivery.count.limit": Entry("7", GROUP),
            "share.record.lock.duration.ms": Entry("20000", GROUP),
        },
        broker={"group.share.delivery.count.limit": Entry("3", STATIC)},
    )

    assert prepare_share_group(admin, "g") == ShareLimits(7, 20)
    assert [kind for kind, _ in admin.described] == [ResourceType.GROUP]


def test_brokers_that_cannot_be_read_leave_the_groups_entries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED))
    admin = Admin(
        {
            "share.auto.offset.reset": Entry("earliest", GROUP),
            "share.delivery.count.limit": Entry("4", DEFAULT),
        },
        broker=refused,
    )

    with caplog.at_level(logging.WARNING):
        assert prepare_share_group(admin, "g") == ShareLimits(4, 30)
    assert "share-group settings" in caplog.text


class Groups:
    """A cluster's answer to describing one group (a share group is described as DEAD)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def describe_consumer_groups(self, ids: list[str], request_timeout: float) -> Any:
        (group_id,) = ids
        return {group_id: done(self.answer)}


def described(state: ConsumerGroupState) -> Any:
    return SimpleNamespace(state=state, type=ConsumerGroupType.CLASSIC)


def test_a_share_group_id_held_by_a_consumer_group_is_refused_naming_how_to_switch() -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_consumer_group(Groups(described(ConsumerGroupState.EMPTY)), "orders")

    assert "group_id orders is a consumer group (empty" in str(refused.value)
    assert "kafka-consumer-groups.sh --delete --group orders" in str(refused.value)


def test_a_share_group_or_no_group_under_the_id_is_not_refused() -> None:
    refuse_consumer_group(Groups(described(ConsumerGroupState.DEAD)), "orders")


def test_a_group_that_cannot_be_described_is_left_to_the_broker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    denied = KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    with caplog.at_level(logging.WARNING):
        refuse_consumer_group(Groups(denied), "orders")

    assert "cannot tell whether orders is a consumer group" in caplog.text
