"""A share group's configuration (queue mode): read its limits, start a new group at the
earliest record. Group configs are the only share-group admin this client has (no offsets,
no backlog): `describe_configs` and `incremental_alter_configs` on the GROUP resource; a limit
the group does not set itself is the brokers' (`group.share.*`, on the BROKER resource)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupState, ConsumerGroupType, KafkaException
from confluent_kafka.admin._config import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
)
from confluent_kafka.admin._resource import ResourceType

from dispatcher.errors import ConfigError

log = logging.getLogger(__name__)
OFFSET_RESET = "share.auto.offset.reset"
DELIVERY_LIMIT = "share.delivery.count.limit"
LOCK_DURATION = "share.record.lock.duration.ms"
# what the brokers enforce on a group that sets neither itself (and all a 4.2 broker has)
BROKER_SETTINGS = {
    DELIVERY_LIMIT: f"group.{DELIVERY_LIMIT}",
    LOCK_DURATION: f"group.{LOCK_DURATION}",
}


@dataclass(frozen=True, slots=True)
class ShareLimits:
    """What the broker enforces on a share group's records (Kafka's defaults until read)."""

    delivery_count_limit: int = 5
    lock_seconds: float = 30.0


def refuse_consumer_group(admin: Any, group_id: str, timeout: float = 15.0) -> None:
    """`ConfigError` when `group_id` is a consumer group (workers ran it with `consume: group`):
    one group id is one kind of group, so the broker would refuse the share group's members
    with a fatal "group id does not exist" (the README's Queue mode says how to switch)."""
    try:
        found = admin.describe_consumer_groups([group_id], request_timeout=timeout)
        group = found[group_id].result()
    except KafkaException as exc:  # e.g. no right to describe it: the broker's refusal stands
        log.warning("cannot tell whether %s is a consumer group (%s)", group_id, _reason(exc))
        return
    state = group.state  # a share group, running or not, is described as a DEAD one
    consumer_kinds = (ConsumerGroupType.CLASSIC, ConsumerGroupType.CONSUMER)
    if group.type in consumer_kinds and state not in (
        ConsumerGroupState.DEAD,
        ConsumerGroupState.UNKNOWN,
    ):
        raise ConfigError(
            f"consume: share, but group_id {group_id} is a consumer group ({state.name.lower()}:"
            " workers ran it with consume: group), and a share group cannot take its id. Stop"
            " the consume: group workers and delete it (kafka-consumer-groups.sh --delete"
            f" --group {group_id}), or set another group_id; the share group then starts at the"
            " earliest record"
        )


def prepare_share_group(admin: Any, group_id: str, timeout: float = 15.0) -> ShareLimits:
    """The group's limits; and, when nobody has set where the group starts, `earliest` (a share
    group starts at the latest record by default, a consumer group here at the earliest)."""
    resource = ConfigResource(ResourceType.GROUP, group_id)
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except KafkaException as exc:
        log.warning(
            "cannot read the configuration of share group %s (%s): using Kafka's defaults",
            group_id,
            _reason(exc),
        )
        return ShareLimits()
    reset = entries.get(OFFSET_RESET)
    if reset is not None and reset.source != ConfigSource.GROUP_CONFIG.value:
        _start_at_earliest(admin, group_id, timeout)
    unset = [name for name in BROKER_SETTINGS if not _set_on_group(entries, name)]
    if unset:  # the brokers' settings stand for these
        brokers = _broker_entries(admin, timeout)
        for name in unset:
            if BROKER_SETTINGS[name] in brokers:
                entries[name] = brokers[BROKER_SETTINGS[name]]
    default = ShareLimits()
    return ShareLimits(
        delivery_count_limit=_int(entries, DELIVERY_LIMIT, default.delivery_count_limit),
        lock_seconds=_int(entries, LOCK_DURATION, int(default.lock_seconds * 1000)) / 1000,
    )


def _set_on_group(entries: dict[str, Any], name: str) -> bool:
    entry = entries.get(name)
    return entry is not None and entry.source == ConfigSource.GROUP_CONFIG.value


def _broker_entries(admin: Any, timeout: float) -> dict[str, Any]:
    """The configuration of one broker (they share the `group.share.*` settings), or nothing
    when it cannot be read: the group's own entries, else Kafka's defaults, stand."""
    try:
        brokers = admin.list_topics(timeout=timeout).brokers
        resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
        found: dict[str, Any] = admin.describe_configs([resource], request_timeout=timeout)[
            resource
        ].result()
    except (KafkaException, ValueError) as exc:  # ValueError: no broker in the metadata
        log.warning("cannot read the brokers' share-group settings (%s): using the group's", exc)
        return {}
    return found


def set_group_config(
    admin: Any, group_id: str, values: dict[str, str], timeout: float = 15.0
) -> None:
    """Set configs of a group (`KafkaException` when refused)."""
    ops = [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in values.items()
    ]
    resource = ConfigResource(ResourceType.GROUP, group_id, incremental_configs=ops)
    for future in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
        future.result()


def _start_at_earliest(admin: Any, group_id: str, timeout: float) -> None:
    try:
        set_group_config(admin, group_id, {OFFSET_RESET: "earliest"}, timeout)
    except KafkaException as exc:
        log.warning(
            "could not set %s=earliest on share group %s (%s): a new group starts at the latest"
            " record; grant this worker ALTER_CONFIGS on the group, or set it once with"
            " kafka-configs.sh --entity-type groups",
            OFFSET_RESET,
            group_id,
            _reason(exc),
        )
    else:
        log.info("share group %s starts at the earliest record (%s)", group_id, OFFSET_RESET)


def _int(entries: dict[str, Any], name: str, default: int) -> int:
    entry = entries.get(name)
    try:
        return int(entry.value) if entry is not None else default
    except (TypeError, ValueError):
        return default


def _reason(exc: KafkaException) -> str:
    return exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
