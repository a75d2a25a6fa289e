"""`topics:`: the topics a worker reads and writes (contract section 5), each name checked."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dispatcher.config.durations import format_duration, parse_duration
from dispatcher.config.keys import KeyProblem, duration

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")  # what Kafka accepts as a topic's name


@dataclass(frozen=True, slots=True)
class Topics:
    events: tuple[str, ...] = ("dugaa.events",)
    results: str = "dugaa.dispatch.results"
    dead_letter: str = "dugaa.dispatch.dlq"
    retry: tuple[float, ...] = (30.0, 300.0, 3600.0)
    retry_prefix: str = "dugaa.dispatch.retry"
    hooks: str = "dugaa.dispatch.hooks"
    health: str = "dugaa.dispatch.health"  # workers' hook health reports and pause decisions
    operations: str = "dugaa.dispatch.operations"  # operational events; empty: none
    attempts: str = "dugaa.dispatch.attempts"  # "": no attempt records
    attempts_retention: float = 7 * 86400.0  # retention.ms of the attempts topic a worker creates

    def retry_topic(self, tier: int) -> str:
        return f"{self.retry_prefix}.{format_duration(self.retry[tier])}"

    @property
    def retry_topics(self) -> tuple[str, ...]:
        return tuple(self.retry_topic(i) for i in range(len(self.retry)))

    def tier_delay(self, topic: str) -> float | None:
        """The delay in the name of a retry tier topic of this `retry_prefix`, configured or
        not; None for any other topic. A tier's name is `<retry_prefix>.<delay>`, the delay
        written as `retry_topic` writes one (`5m`, never `300s`): only a name a worker could
        have given a tier qualifies."""
        head = f"{self.retry_prefix}."
        if not topic.startswith(head):
            return None
        written = topic[len(head) :]
        try:
            seconds = parse_duration(written)
        except ValueError:
            return None
        return seconds if seconds > 0 and format_duration(seconds) == written else None

    def retired_tiers(self, existing: Iterable[str]) -> tuple[str, ...]:
        """The tier topics of this `retry_prefix` among `existing` (the cluster's topics) that
        `retry` no longer names, shortest first: tiers of an earlier `topics.retry`, which may
        still hold pairs. A worker reads them until they are empty (`engine/assembly.py`)
        and never writes to them."""
        retired = [
            (delay, topic)
            for topic in set(existing) - self._named()
            if (delay := self.tier_delay(topic)) is not None
        ]
        return tuple(topic for _delay, topic in sorted(retired))

    def _named(self) -> set[str]:
        """Every topic named here: none of them is a retired tier, whatever its name."""
        named = {*self.events, *self.retry_topics, self.results, self.dead_letter, self.hooks}
        return named | {self.health, self.operations, self.attempts}


def read_topics(raw: dict[str, Any]) -> Topics:
    default = Topics()
    known = {"events", "results", "dead_letter", "retry", "retry_prefix", "hooks", "attempts"}
    known |= {"attempts_retention"}
    unknown = set(raw) - known - {"health", "operations"}
    if unknown:
        raise KeyProblem("topics." + sorted(unknown)[0], "unknown key")
    events = raw.get("events", default.events)
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    retry = raw.get("retry", default.retry)
    if isinstance(retry, str):
        retry = [r.strip() for r in retry.split(",") if r.strip()]
    delays = tuple(duration("topics.retry", r) for r in retry)
    if any(later <= earlier for earlier, later in itertools.pairwise(delays)):
        # a pair moves on to the first tier whose delay covers its wait (pipeline/retry.py)
        raise KeyProblem("topics.retry", "the tiers' delays must grow, each longer than the last")
    return Topics(
        events=tuple(str(e) for e in events),
        results=str(raw.get("results", default.results)),
        dead_letter=str(raw.get("dead_letter", default.dead_letter)),
        retry=delays,
        retry_prefix=str(raw.get("retry_prefix", default.retry_prefix)),
        hooks=str(raw.get("hooks", default.hooks)),
        attempts=_attempts_topic(raw.get("attempts", default.attempts)),
        attempts_retention=_retention(raw.get("attempts_retention", default.attempts_retention)),
        health=_health_topic(raw.get("health", default.health)),
        operations=str(raw.get("operations", default.operations) or ""),
    )


def _health_topic(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KeyProblem("topics.health", "must name a topic (hook health and pauses live there)")
    return value.strip()


def _retention(value: Any) -> float:
    """`topics.attempts_retention`: a duration, or 0 (written as a number, text or `0s`: an
    override's value is text) for the cluster's default retention."""
    return duration("topics.attempts_retention", value, least=0.0)


def _attempts_topic(value: Any) -> str:
    """`topics.attempts`: a topic name, or empty (or null) to write no attempt records."""
    name = "" if value is None else str(value).strip()
    if name and not TOPIC_NAME.fullmatch(name):
        raise KeyProblem(
            "topics.attempts",
            f"{name!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249);"
            ' write "" to switch attempt records off',
        )
    return name
