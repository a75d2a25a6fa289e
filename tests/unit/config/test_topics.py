"""Retry tier topics by name: which of a cluster's topics are tiers `topics.retry` no longer
names (retired tiers, read until empty), and which are not."""

from __future__ import annotations

import pytest

from dispatcher.config.topics import Topics

NOW = Topics(retry=(60.0, 600.0))  # [1m, 10m], changed from the default [30s, 5m, 1h]


@pytest.mark.parametrize(
    ("name", "delay"),
    [
        ("dugaa.dispatch.retry.30s", 30.0),
        ("dugaa.dispatch.retry.5m", 300.0),
        ("dugaa.dispatch.retry.1h", 3600.0),
        ("dugaa.dispatch.retry.2d", 172800.0),
        ("dugaa.dispatch.retry.1.5s", 1.5),  # a delay below a second keeps its point
        ("dugaa.dispatch.retry.90s", 90.0),
        ("dugaa.dispatch.retry.1m", 60.0),  # a configured one is a tier too
    ],
)
def test_a_name_the_dispatcher_gives_a_tier_has_that_delay(name: str, delay: float) -> None:
    assert NOW.tier_delay(name) == delay


@pytest.mark.parametrize(
    "name",
    [
        "dugaa.dispatch.retry.300s",  # 5m's tier is named .5m: no worker wrote this one
        "dugaa.dispatch.retry.60",  # no unit
        "dugaa.dispatch.retry.500ms",  # written 0.5s
        "dugaa.dispatch.retry.0s",
        "dugaa.dispatch.retry.5m.dlq",
        "dugaa.dispatch.retry.soon",
        "dugaa.dispatch.retry.",
        "dugaa.dispatch.retry",
        "dugaa.dispatch.retry5m",
        "dugaa.dispatch.retryer.5m",  # another prefix
        "other.retry.5m",
        "dugaa.dispatch.results",
    ],
)
def test_a_name_no_tier_of_this_prefix_has_is_no_tier(name: str) -> None:
    assert NOW.tier_delay(name) is None


def test_the_retired_tiers_are_this_prefixs_tiers_not_configured_shortest_first() -> None:
    cluster = [
        "dugaa.events",
        "dugaa.dispatch.results",
        "dugaa.dispatch.dlq",
        "dugaa.dispatch.retry.1h",
        "dugaa.dispatch.retry.1m",  # configured
        "dugaa.dispatch.retry.10m",  # configured
        "dugaa.dispatch.retry.30s",
        "dugaa.dispatch.retry.5m",
        "dugaa.dispatch.retry.300s",
        "billing.retry.5m",  # another deployment's prefix: left alone
        "__consumer_offsets",
    ]

    assert NOW.retired_tiers(cluster) == (
        "dugaa.dispatch.retry.30s",
        "dugaa.dispatch.retry.5m",
        "dugaa.dispatch.retry.1h",
    )


def test_no_tier_is_retired_while_the_configured_ones_are_all_there_are() -> None:
    assert Topics().retired_tiers([*Topics().retry_topics, "dugaa.events"]) == ()


def test_a_topic_the_configuration_names_for_something_else_is_never_a_retired_tier() -> None:
    odd = Topics(events=("dugaa.dispatch.retry.2h",), retry=(60.0,))

    assert odd.retired_tiers(["dugaa.dispatch.retry.2h", "dugaa.dispatch.retry.3h"]) == (
        "dugaa.dispatch.retry.3h",
    )


def test_without_tiers_configured_every_tier_of_the_prefix_is_retired() -> None:
    assert Topics(retry=()).retired_tiers(["dugaa.dispatch.retry.30s"]) == (
        "dugaa.dispatch.retry.30s",
    )
