"""A worker's retired tiers (tiers an earlier `topics.retry` named): found at start, told once
each, and read in the retry group, in queue mode too, so that their pairs still end."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.assembly import consumer_groups
from dispatcher.engine.worker import find_retired_tiers

NOW = Topics(retry=(60.0, 600.0))  # [1m, 10m], changed from the default [30s, 5m, 1h]
RETIRED = ("dugaa.dispatch.retry.30s", "dugaa.dispatch.retry.5m")


def cluster(*topics: str) -> SimpleNamespace:
    """An admin client whose cluster holds `topics`."""
    return SimpleNamespace(
        list_topics=lambda timeout: SimpleNamespace(topics={t: None for t in topics})
    )


def test_each_retired_tier_is_told_once_with_when_it_may_be_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(group_id="billing", topics=NOW)
    admin = cluster(*NOW.retry_topics, *RETIRED, "dugaa.events", "other.retry.5m")

    with caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"):
        found = find_retired_tiers(admin, settings)  # type: ignore[arg-type]

    assert found == RETIRED
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2
    for topic, line in zip(RETIRED, told, strict=True):
        assert line.startswith(f"retry tier {topic} is not in topics.retry: it is read until")
        assert line.endswith("delete it once the group billing.retry has no lag on it")


def test_nothing_is_told_when_no_tier_is_retired(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(topics=NOW)

    with caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"):
        assert find_retired_tiers(cluster(*NOW.retry_topics), settings) == ()  # type: ignore[arg-type]

    assert caplog.records == []


@pytest.mark.parametrize("consume", ["group", "share"])
def test_the_retry_group_reads_the_retired_tiers_after_the_configured_ones(consume: str) -> None:
    settings = Settings(group_id="billing", topics=NOW, consume=consume)  # type: ignore[arg-type]

    assert consumer_groups(settings, RETIRED) == [
        ("billing", ["dugaa.events"]),
        ("billing.retry", [*NOW.retry_topics, *RETIRED]),
        ("billing.operations", ["dugaa.dispatch.operations"]),
    ]


def test_retired_tiers_are_read_even_with_no_tier_configured() -> None:
    settings = Settings(group_id="billing", topics=Topics(retry=(), operations=""))

    assert consumer_groups(settings, RETIRED) == [
        ("billing", ["dugaa.events"]),
        ("billing.retry", list(RETIRED)),
    ]
    assert consumer_groups(settings, ()) == [("billing", ["dugaa.events"])]
