"""The admin service's replay jobs: a running replay is never forgotten (so an overlapping one
stays refused), only finished jobs are dropped, the number running is bounded (for one tenant,
and for the tenants together, too), and counting progress can never cut a replay short."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dispatcher.config.settings import Settings
from dispatcher.errors import ReplaysBusy
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source
from dispatcher.ops.replay import jobs as jobs_module
from dispatcher.ops.replay import run as run_module
from dispatcher.ops.replay.jobs import (
    KEPT,
    RUNNING_AT_MOST,
    TENANT_RUNNING_AT_MOST,
    TENANTS_RUNNING_AT_MOST,
    ReplayJobs,
    plan_rows,
)
from dispatcher.ops.replay.plan import Plan, Summary, plan
from dispatcher.ops.replay.run import ReplayOptions, run_replay
from dispatcher.ops.replay.selection import Selection
from dispatcher.pipeline.match import HookIndex

ERP = HookIndex([Hook.from_dict({"id": "erp", "events": ["x"], "url": "https://erp.example/"})])
EVENT = Event.from_dict({"specversion": "1.0", "id": "e", "type": "x", "source": "/s"})
REAL = ReplayOptions(Selection(hook="erp"))
DRY = ReplayOptions(Selection(hook="erp"), dry_run=True)


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Replays that run until the event is set; dry runs that end at once."""
    gate = threading.Event()

    def fake_run(_settings: Any, _hooks: Any, options: ReplayOptions, *_a: Any, **_k: Any) -> Any:
        if not options.dry_run:
            gate.wait(10)
        return Plan(), Summary(selected=0, dry_run=options.dry_run)

    monkeypatch.setattr(jobs_module, "run_replay", fake_run)
    yield gate
    gate.set()


def settled(jobs: ReplayJobs, running: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(job.status == "running" for job in jobs.all()) != running:
        assert time.monotonic() < deadline, "the jobs did not settle"
        time.sleep(0.01)


def test_a_running_replay_outlives_any_number_of_dry_runs_and_still_refuses_an_overlap(
    release: threading.Event,
) -> None:
    jobs = ReplayJobs(Settings(), lambda: ERP)
    first, started = jobs.start(REAL)
    assert started
    for _ in range(KEPT + 10):
        jobs.start(DRY)
        settled(jobs, 1)
    assert jobs.get(first.id) is not None
    assert jobs.start(REAL) == (jobs.get(first.id), False)


def test_only_the_last_finished_jobs_are_kept(release: threading.Event) -> None:
    jobs = ReplayJobs(Settings(), lambda: ERP)
    dry_runs = []
    for _ in range(KEPT + 5):
        dry_runs.append(jobs.start(DRY)[0].id)
        settled(jobs, 0)
    kept = [job.id for job in jobs.all()]
    assert kept == dry_runs[-KEPT:]


def test_no_more_than_the_bound_run_at_once(release: threading.Event) -> None:
    jobs = ReplayJobs(Settings(), lambda: ERP)
    for n in range(RUNNING_AT_MOST):
        jobs.start(ReplayOptions(Selection(hook=f"hook-{n}")))
    with pytest.raises(ReplaysBusy, match="running"):
        jobs.start(DRY)
    release.set()
    settled(jobs, 0)
    assert jobs.start(DRY)[1]


def test_no_tenant_keeps_the_other_tenants_nor_the_operator_from_replaying(
    release: threading.Event,
) -> None:
    """A tenant's replay at a letter a year runs for a year: were every place its own, no one
    else could replay until the admin service restarted."""
    jobs = ReplayJobs(Settings(), lambda: ERP)

    def replay(tenant: str | None, n: int) -> ReplayOptions:
        return ReplayOptions(Selection(hook=f"{tenant}-{n}", tenant=tenant), rate=1e-9)

    for n in range(TENANT_RUNNING_AT_MOST):
        assert jobs.start(replay("acme", n), "acme")[1]
    with pytest.raises(ReplaysBusy, match="of tenant acme are running, as many as one tenant"):
        jobs.start(replay("acme", 99), "acme")
    others = TENANTS_RUNNING_AT_MOST // TENANT_RUNNING_AT_MOST - 1  # fill the tenants' places
    for tenant in (f"tenant-{t}" for t in range(others)):
        for n in range(TENANT_RUNNING_AT_MOST):
            assert jobs.start(replay(tenant, n), tenant)[1]
    with pytest.raises(ReplaysBusy, match="of tenants are running as run at once"):
        jobs.start(replay("globex", 0), "globex")
    for n in range(RUNNING_AT_MOST - TENANTS_RUNNING_AT_MOST):
        assert jobs.start(replay(None, n))[1]  # the operator's places
    with pytest.raises(ReplaysBusy, match="as many as run at once"):
        jobs.start(replay(None, 99))


def test_a_progress_report_that_fails_neither_stops_the_sending_nor_the_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    letters = tuple(letter(n) for n in range(40))  # more than run_module.CONCURRENCY
    sent: list[str] = []
    producer = AckingProducer()

    async def deliver_one(found: DeadLetter, *_args: Any) -> Outcome:
        sent.append(found.idempotency_key)
        now = time.time()
        source = Source("events", 0, found.record.offset)
        return Outcome("e", "x", "erp", "delivered", 1, found.idempotency_key, source, now, now)

    monkeypatch.setattr(run_module, "Producer", lambda _config: producer)
    monkeypatch.setattr(run_module, "_deliver_one", deliver_one)

    def failing_report(_summary: Summary) -> None:
        raise KeyError("job")

    prepared = Plan(send=letters, events={d.where: EVENT for d in letters})
    _plan, summary = run_replay(Settings(), ERP, REAL, failing_report, prepared=prepared)
    assert sorted(sent) == sorted(d.idempotency_key for d in letters)
    assert (summary.delivered, producer.flushed) == (40, True)


def letter(n: int) -> DeadLetter:
    headers = (
        ("dispatcher.hook.id", b"erp"),
        ("dispatcher.error.kind", b"http_status"),
        ("dispatcher.idempotency.key", f"msg_{n}".encode()),
        ("dispatcher.failed.at", b"2026-01-01T00:00:00Z"),
    )
    return DeadLetter.from_record(Record("dlq", 0, n, b"k", b"{}", headers, 0))


class AckingProducer:
    """A producer whose broker takes every record at the next poll."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[Any, Any], None]] = []
        self.flushed = False

    def produce(self, _topic: str, **kwargs: Any) -> None:
        self.waiting.append(kwargs["on_delivery"])

    def poll(self, _timeout: float = 0) -> int:
        acks, self.waiting = self.waiting, []
        for ack in acks:
            ack(None, None)
        return len(acks)

    def flush(self, _timeout: float | None = None) -> int:
        self.poll()
        self.flushed = True
        return 0


def test_a_dry_runs_rows_name_each_letters_event_id_and_type_as_the_command_lists_them() -> None:
    """The contract's dry run lists, per dead letter, its event id and event type (section 6):
    the admin API's and the console's rows named neither, only the letter's place."""
    headers = (
        ("content-type", b"application/cloudevents+json"),
        ("dispatcher.hook.id", b"erp"),
        ("dispatcher.error.kind", b"http_status"),
        ("dispatcher.idempotency.key", b"msg_1"),
        ("dispatcher.failed.at", b"2026-11-29T10:00:00.000Z"),
    )
    value = b'{"specversion":"1.0","id":"ev-1","type":"x","source":"/s","data":{}}'
    sent = DeadLetter.from_record(Record("dlq", 0, 1, b"k", value, headers, 1_000))
    broken = DeadLetter.from_record(
        Record("dlq", 0, 2, None, b"not an event", (("dispatcher.error.kind", b"decode"),), 1_000)
    )

    rows = plan_rows(plan([sent, broken], set(), ERP))

    assert [(r["letter"], r["event_id"], r["event_type"]) for r in rows] == [
        ("dlq/0/1", "ev-1", "x"),
        ("dlq/0/2", None, None),
    ]
    assert rows[0]["action"] == "send"


def test_a_replay_of_many_letters_keeps_a_bounded_number_of_them_under_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay made a task for every letter before it sent the first: 200000 letters sent
    nothing for half a minute after reading, held a task each, and heard a stop only after."""
    letters = tuple(letter(n) for n in range(3 * run_module.WINDOW))
    sent: list[str] = []
    alive: list[int] = []

    async def deliver_one(found: DeadLetter, *_args: Any) -> Outcome:
        alive.append(len(asyncio.all_tasks()))
        sent.append(found.idempotency_key)
        now = time.time()
        source = Source("events", 0, found.record.offset)
        return Outcome("e", "x", "erp", "delivered", 1, found.idempotency_key, source, now, now)

    monkeypatch.setattr(run_module, "Producer", lambda _config: AckingProducer())
    monkeypatch.setattr(run_module, "_deliver_one", deliver_one)

    prepared = Plan(send=letters, events={d.where: EVENT for d in letters})
    _plan, summary = run_replay(Settings(), ERP, REAL, prepared=prepared)

    assert sorted(sent) == sorted(d.idempotency_key for d in letters)
    assert summary.delivered == len(letters)
    assert max(alive) <= run_module.WINDOW + 8  # the run's own tasks beside the letters'


def test_a_dry_run_of_many_letters_keeps_a_bounded_plan_and_says_how_many_it_left_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dry run kept a row for every letter it selected, for each of the last 50 jobs: one of
    200000 letters made `GET /api/replays` answer 51 MB, and a few of them filled the admin
    service's memory."""
    letters = tuple(letter(n) for n in range(jobs_module.PLAN_ROWS + 5))
    big = Plan(send=letters, events={d.where: EVENT for d in letters})
    summary = Summary(selected=len(letters), dry_run=True)
    monkeypatch.setattr(jobs_module, "run_replay", lambda *_a, **_k: (big, summary))
    jobs = ReplayJobs(Settings(), lambda: ERP)

    job, _ = jobs.start(DRY)
    settled(jobs, running=0)

    shown = jobs.get(job.id)
    assert shown is not None
    document = shown.as_dict()
    assert len(document["plan"]) == jobs_module.PLAN_ROWS
    assert document["plan"][0]["letter"] == "dlq/0/0"
    assert document["plan_left_off"] == 5
