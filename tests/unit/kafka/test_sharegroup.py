"""A share group's start: its limits are read, and a group nobody configured starts earliest."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from dispatcher.kafka.sharegroup import ShareLimits, prepare_share_group

DEFAULT, GROUP = 5, 8  # ConfigSource.DEFAULT_CONFIG, ConfigSource.GROUP_CONFIG


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
    def __init__(self, entries: dict[str, Entry], alter: Exception | None = None) -> None:
        self.entries = entries
        self.alter = alter
        self.altered: list[dict[str, str]] = []

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        return {resources[0]: done(self.entries)}

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
