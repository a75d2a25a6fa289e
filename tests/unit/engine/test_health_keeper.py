"""A worker's hook health: its own attempts, its reports, the decisions it takes and follows;
and its end when its producer failed for good."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from fake_clock import Clock
from kafka_fakes import FailingProducer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.health import WITHDRAW_SECONDS, HealthKeeper
from dispatcher.http.sender import Attempt
from dispatcher.kafka.health import HealthWriter
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.health import Decision, Report
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.match import HookIndex

OPS = "dugaa.dispatch.operations"
ERP = Hook.from_dict(
    {"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/", "pause_after": "60s"}
)
CHAT = Hook.from_dict(
    {"id": "chat", "events": ["dispatcher.hook.*"], "url": "https://chat.example.com/"}
)
FAILED = Attempt(Verdict.failure("http_status", "unexpected status 503", retryable=True), 0.1)
OK = Attempt(Verdict(ok=True, status=200), 0.1)


class Writer:
    """The health topic's writer: what was written; a decision is answered on `poll`, taken
    unless `refused` says how many more it refuses (a broker out of reach)."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.decisions: list[Decision] = []
        self.refused = 0
        self._unanswered: list[tuple[Decision, Callable[[Decision, bool], None]]] = []

    def report(self, report: Report) -> None:
        self.reports.append(report)

    def decide(self, decision: Decision, written: Callable[[Decision, bool], None]) -> None:
        self.decisions.append(decision)
        self._unanswered.append((decision, written))

    def poll(self) -> None:
        unanswered, self._unanswered = self._unanswered, []
        for decision, written in unanswered:
            taken = self.refused <= 0
            self.refused -= 1
            written(decision, taken)


class Follower:
    def __init__(self) -> None:
        self.others: list[Report] = []

    def reports(self) -> list[Report]:
        return list(self.others)


def keeper() -> tuple[HealthKeeper, Writer, Follower, Clock]:
    clock = Clock()
    settings = Settings(topics=Topics(operations=OPS))
    made = HealthKeeper(
        settings, lambda: HookIndex([ERP, CHAT]), Metrics(CollectorRegistry()), clock=clock
    )
    writer, follower = Writer(), Follower()
    made.writer = writer  # type: ignore[assignment]
    made.follower = follower  # type: ignore[assignment]
    return made, writer, follower, clock


def pair(hook: Hook, topic: str = "dugaa.events") -> Pair:
    record = Record(topic, 0, 1, None, b"{}", ())
    event = Event(id="e1", type="order.paid", source="/t")
    return Pair(record, event, hook, Source(topic, 0, 1), "key")


def paused_gauge(made: HealthKeeper, hook_id: str) -> float | None:
    return made.metrics.registry.get_sample_value("dispatcher_hook_paused", {"hook": hook_id})


def test_its_own_attempts_are_reported_once_changed() -> None:
    made, writer, _, clock = keeper()
    made.observe(pair(ERP), 1, FAILED)
    clock.now += 5
    made.observe(pair(ERP), 2, FAILED)
    made.tick()
    made.tick()  # nothing changed since: nothing written
    (report,) = writer.reports
    assert (report.hook_id, report.worker) == ("erp", made.worker)
    assert (report.failing_since, report.last_failure, report.last_success) == (1000, 1005, None)
    assert report.last_error == "unexpected status 503"
    made.observe(pair(ERP), 3, OK)
    made.tick()
    assert (writer.reports[-1].failing_since, writer.reports[-1].last_success) == (None, 1005)


def test_pairs_from_the_operations_topic_never_count() -> None:
    made, writer, _, clock = keeper()
    for n in range(100):
        clock.now += 10
        made.observe(pair(CHAT, topic=OPS), n, FAILED)
    made.tick()
    assert (writer.reports, writer.decisions) == ([], [])
    assert made.held("chat") is None


def test_failing_on_two_workers_past_pause_after_pauses_the_hook() -> None:
    made, writer, follower, clock = keeper()
    follower.others = [Report("erp", "other", 1030.0, None, 1000.0, 1030.0, "timeout")]
    clock.now = 1050.0
    made.observe(pair(ERP), 1, FAILED)
    made.tick()
    assert [d.state for d in writer.decisions] == ["failing"]  # 60 s / 4 = 15 s of failures
    assert made.held("erp") is None
    clock.now = 1065.0
    made.observe(pair(ERP), 2, FAILED)  # 1000 .. 1065: 65 s of failures with no success
    made.tick()
    assert [(d.state, d.since) for d in writer.decisions] == [
        ("failing", 1000.0),
        ("paused", 1000.0),
    ]
    assert made.held("erp") is not None
    assert "paused" in (made.held("erp") or "")
    assert paused_gauge(made, "erp") == 1


def test_a_success_on_another_worker_keeps_the_hook_going() -> None:
    made, writer, follower, clock = keeper()
    follower.others = [Report("erp", "other", 1100.0, 1100.0)]
    made.observe(pair(ERP), 1, FAILED)
    clock.now = 1101.0
    made.observe(pair(ERP), 2, FAILED)
    made.tick()
    assert writer.decisions == []


def test_a_decision_read_from_the_topic_pauses_and_a_resume_lifts_it() -> None:
    made, _, _, clock = keeper()
    made.observe(pair(ERP), 1, FAILED)
    made._on_decision(Decision("erp", "paused", 900.0, 1000.0, reason="manual"))
    made.tick()
    assert "by hand" in (made.held("erp") or "")
    assert paused_gauge(made, "erp") == 1
    clock.now = 2000.0
    made._on_decision(Decision("erp", "resumed", 900.0, 2000.0, floor=2000.0))
    made.tick()
    assert made.held("erp") is None
    assert paused_gauge(made, "erp") == 0


def test_of_two_workers_attempting_a_hook_only_the_first_by_id_decides() -> None:
    made, writer, follower, clock = keeper()
    made.worker = "worker-b"
    follower.others = [Report("erp", "worker-a", 1100.0, None, 1000.0, 1100.0, "503")]
    clock.now = 1100.0
    made.observe(pair(ERP), 1, FAILED)
    made.tick()
    assert writer.decisions == []  # worker-a decides: it attempted erp lately too
    clock.now = 1200.0  # worker-a is silent since 1100 (dead, or no traffic): b takes over
    made.observe(pair(ERP), 2, FAILED)
    made.tick()
    assert [d.state for d in writer.decisions] == ["failing", "paused"]


def test_a_decision_the_health_topic_did_not_take_is_not_applied_and_is_written_again() -> None:
    made, writer, follower, clock = keeper()
    made.worker = "worker-a"  # the decider
    follower.others = [Report("erp", "worker-b", 1065.0, None, 1000.0, 1065.0, "503")]
    clock.now = 1065.0
    made.observe(pair(ERP), 1, FAILED)
    writer.refused = 2  # neither `failing` nor `paused` reaches Kafka
    made.tick()
    assert [d.state for d in writer.decisions] == ["failing", "paused"]
    assert made.held("erp") is None  # no worker holds erp: this one does not either
    assert paused_gauge(made, "erp") == 0

    clock.now = 1070.0
    made.observe(pair(ERP), 2, FAILED)
    made.tick()  # Kafka takes them now

    assert [d.state for d in writer.decisions] == ["failing", "paused", "failing", "paused"]
    assert writer.decisions[3].since == 1000.0  # the same pause: the same event id
    assert made.held("erp") is not None
    assert paused_gauge(made, "erp") == 1
    made.tick()
    assert len(writer.decisions) == 4  # written once taken


def test_a_decision_is_not_written_twice_while_its_answer_is_awaited() -> None:
    made, writer, follower, clock = keeper()
    made.worker = "worker-a"  # the decider
    follower.others = [Report("erp", "worker-b", 1065.0, None, 1000.0, 1065.0, "503")]
    clock.now = 1065.0
    made.observe(pair(ERP), 1, FAILED)
    writer.poll = lambda: None  # type: ignore[method-assign]  # no answer yet
    made.tick()
    made.tick()

    assert [d.state for d in writer.decisions] == ["failing", "paused"]
    assert made.held("erp") is None


def test_a_pause_answered_after_a_later_resume_was_read_does_not_pause_again() -> None:
    made, writer, follower, clock = keeper()
    made.worker = "worker-a"  # the decider
    follower.others = [Report("erp", "worker-b", 1065.0, None, 1000.0, 1065.0, "503")]
    clock.now = 1065.0
    made.observe(pair(ERP), 1, FAILED)
    answer, writer.poll = writer.poll, lambda: None  # type: ignore[method-assign]
    made.tick()
    made._on_decision(Decision("erp", "resumed", 1000.0, 1066.0, floor=1066.0))  # read
    answer()

    assert made.held("erp") is None


def test_a_producer_failed_for_good_ends_the_run_in_one_line_and_its_stop_writes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """librdkafka's fatal error, raised by the round's `poll()`, was logged as a failed round,
    and the keeper went on for ever, writing nothing (so no hook could pause) while the worker
    ran on; its stop then tried to withdraw its reports through the dead producer."""
    settings = Settings(topics=Topics(operations=OPS), hook_health_interval=0.001)
    made = HealthKeeper(settings, lambda: HookIndex([ERP]), Metrics(CollectorRegistry()))
    producer = FailingProducer()
    made.writer = HealthWriter(settings, producer)
    stopping = asyncio.Event()
    rounds: list[int] = []

    class Rounds(Follower):
        def reports(self) -> list[Report]:
            rounds.append(len(rounds) + 1)
            if len(rounds) == 3:  # a keeper that does not end by itself is stopped here
                stopping.set()
            return []

        def stop(self, by: float | None = None) -> None:
            pass

    made.follower = Rounds()  # type: ignore[assignment]
    made.observe(pair(ERP), 1, FAILED)
    producer.fail()

    with caplog.at_level(logging.ERROR):
        asyncio.run(made.run(stopping))
        made.stop()

    assert rounds == [1]  # it ended after the round that saw it
    assert made.fatal is not None
    assert made.fatal.endswith("gap-less guarantee (_GAPLESS_GUARANTEE)")
    # the one error (an earlier test may have left the dispatcher's loggers at INFO)
    (said,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said.startswith("fatal producer error, stopping (hook health: ")
    assert said.endswith(made.fatal)
    assert producer.refused == 1  # the round's report; its stop withdraws nothing


class Withdrawing:
    """The health writer and follower at a stop: the tombstones written, each wait asked."""

    fatal = None

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.flushed: list[float] = []
        self.stopped_by: list[float | None] = []

    def forget(self, key: str) -> None:
        self.forgotten.append(key)

    def flush(self, timeout: float) -> None:
        self.flushed.append(timeout)

    def stop(self, by: float | None = None) -> None:
        self.stopped_by.append(by)


@pytest.mark.parametrize(
    ("left", "at_least", "at_most"),
    [(60.0, WITHDRAW_SECONDS, WITHDRAW_SECONDS), (2.0, 1.0, 2.0), (-1.0, 0.0, 0.0)],
)
def test_its_stop_withdraws_its_reports_waiting_no_later_than_the_worker_s_stop_deadline(
    left: float, at_least: float, at_most: float
) -> None:
    """The worker gives every part it closes at a stop one deadline (`Worker._shut_down`):
    the withdrawal waited its own 5 s whatever was left of it."""
    made, _, _, _ = keeper()
    fake = Withdrawing()
    made.writer = made.follower = fake  # type: ignore[assignment]
    made.observe(pair(ERP), 1, FAILED)
    by = time.monotonic() + left

    made.stop(by)

    assert fake.forgotten == [f"erp/{made.worker}"]
    [flushed] = fake.flushed
    assert at_least <= flushed <= at_most
    assert fake.stopped_by == [by]


def test_a_disabled_hook_exports_no_pause_and_no_failing_spell_until_enabled_again() -> None:
    """Disabled, a hook has no events to dead-letter and no attempts to end a spell: a pause
    or spell it keeps would page DispatcherHookPaused or DispatcherHookFailing for good."""
    hooks = HookIndex([ERP, CHAT])
    made = HealthKeeper(
        Settings(topics=Topics(operations=OPS)), lambda: hooks, Metrics(CollectorRegistry())
    )
    made._on_decision(Decision("erp", "paused", 900.0, 1000.0, reason="manual"))
    made._on_decision(Decision("chat", "failing", 900.0, 1000.0))
    made._export(hooks)
    assert (paused_gauge(made, "erp"), failing_gauge(made, "chat")) == (1, 1)
    hooks = HookIndex([replace(ERP, enabled=False), replace(CHAT, enabled=False)])
    made._export(hooks)
    assert (paused_gauge(made, "erp"), failing_gauge(made, "chat")) == (None, None)
    assert made.held("erp") is not None  # still paused: enabled again, its events wait for a resume
    hooks = HookIndex([ERP, CHAT])
    made._export(hooks)
    assert (paused_gauge(made, "erp"), failing_gauge(made, "chat")) == (1, 1)


def failing_gauge(made: HealthKeeper, hook_id: str) -> float | None:
    return made.metrics.registry.get_sample_value("dispatcher_hook_failing", {"hook": hook_id})
