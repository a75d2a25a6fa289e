"""Run a replay: read the dead letters and the results, then re-deliver through the delivery path.

Each planned letter goes to its own hook only, as the event the plan read from it (with the
worker's decoder: Avro too), with its original webhook-id and a fresh attempt budget (local
retries, no retry tiers), through the same `Deliverer`, `HookClient` and `OutcomeWriter` a
worker uses: a success writes a `delivered` result (which the next replay reads), a failure a
new dead letter carrying `dispatcher.replayed.from`. A hook with `ordering: key` gets one letter
of an event key at a time, oldest first, as a worker keeps that order.

Asked to stop (`stop`, which the command line sets on SIGINT or SIGTERM), a replay ends in
order, as a worker drains: no letter starts (nor another attempt), the requests under way end
(up to `drain_timeout`) and their outcomes are written and acknowledged, so that the next run
sends again only what this one did not send.

Its producer failed for good (a librdkafka fatal error: the outcome writer's `fatal`), no
outcome can be written any more: the replay says so as a worker does, and stops as it would
on a signal, then ends with `KafkaUnavailable` (exit 3) at once, rather than send letters whose
outcomes nobody would ever read, and wait out `ACK_TIMEOUT` for acknowledgements that cannot
come. What it sent and could not record, the next run sends again (with the same webhook-id).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer

from dispatcher.config.settings import Settings
from dispatcher.engine.attempts import attempt_observers
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.wiring import say_producer_failed
from dispatcher.errors import KafkaUnavailable, Withdrawn
from dispatcher.http.limits import Slots
from dispatcher.http.pool import ClientPool
from dispatcher.kafka.avro.decoder import event_decoder
from dispatcher.kafka.clients import made, producer_config
from dispatcher.kafka.health import read_decisions
from dispatcher.kafka.results import delivered_keys
from dispatcher.kafka.scan import Start, scan
from dispatcher.kafka.writer import OutcomeWriter, outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Event
from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.ops.replay.plan import Plan, Summary, plan, reasons, select
from dispatcher.ops.replay.selection import Selection
from dispatcher.ops.replay.window import Window
from dispatcher.pipeline.match import HookIndex

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
Report = Callable[[Summary], None]
CONCURRENCY = 16
WINDOW = 1024  # letters under way at once (of them CONCURRENCY sending): tasks, not requests
CLOCK_SLACK = 300.0  # record timestamps and failed-at may differ by this much
ACK_TIMEOUT = 60.0
STOP_POLL = 0.05  # seconds between looks at a stop asked for (by a signal handler)


# what `prepare` reads (`dead letters` or `results`), offsets read so far, offsets to read
Reading = Callable[[str, int, int], None]
DEAD_LETTERS, RESULTS = "dead letters", "results"


def _unheard(_what: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to replay and how: the selection, a rate (letters per second) and dry-run."""

    selection: Selection
    rate: float | None = None
    dry_run: bool = False


def prepare(
    settings: Settings, hooks: HookIndex, selection: Selection, reading: Reading | None = None
) -> Plan:
    """The plan for `selection` as the topics stand now; letters read as a worker reads events.
    `reading` is told how far the reads of the dead letters and of the results have come."""
    told = reading or _unheard
    since_ms = None if selection.since is None else int((selection.since - CLOCK_SLACK) * 1000)
    records = scan(
        settings,
        settings.topics.dead_letter,
        Start(since_ms=since_ms),
        progress=lambda done, total: told(DEAD_LETTERS, done, total),
    )
    chosen = select((DeadLetter.from_record(r) for r in records), selection)
    times = [letter.failed_at for letter in chosen]
    earliest = None if not times or None in times else min(t for t in times if t is not None)
    results_since = None if earliest is None else int((earliest - CLOCK_SLACK) * 1000)
    paused = {h: d.since for h, d in read_decisions(settings).items() if d.state == "paused"}
    delivered = delivered_keys(
        settings, results_since, lambda done, total: told(RESULTS, done, total)
    )
    return plan(chosen, delivered, hooks, paused, event_decoder(settings.schema_registry))


def run_replay(
    settings: Settings,
    hooks: HookIndex,
    options: ReplayOptions,
    report: Report | None = None,
    prepared: Plan | None = None,
    tracing: TracerProvider | None = None,
    stop: threading.Event | None = None,
) -> tuple[Plan, Summary]:
    """Replay (or, with dry-run, only plan) `options.selection`; `report` sees the counts grow
    (a report that raises is logged, never stops the replay). With `tracing`, the run has a span
    and each pair's span links to it. Once `stop` is set, the replay ends in order (above); its
    summary says it `stopped`."""
    report = None if report is None else _harmless(report)
    the_plan = prepared or prepare(settings, hooks, options.selection)
    summary = Summary(
        selected=the_plan.selected,
        skipped=len(the_plan.skip),
        dry_run=options.dry_run,
        skipped_reasons=reasons(the_plan),
    )
    if report is not None:
        report(summary)
    if options.dry_run or not the_plan.send:
        return the_plan, summary
    final = asyncio.run(
        _redeliver(
            settings,
            hooks,
            the_plan,
            options.rate,
            summary,
            report,
            tracing,
            stop or threading.Event(),
        )
    )
    return the_plan, final


async def _redeliver(
    settings: Settings,
    hooks: HookIndex,
    the_plan: Plan,
    rate: float | None,
    start: Summary,
    report: Report | None,
    tracing: TracerProvider | None,
    stop: threading.Event,
) -> Summary:
    metrics = Metrics()
    producer = made(Producer, producer_config(settings), settings)
    writer = outcome_writer(producer, settings, metrics)
    pool = ClientPool(settings)
    recorders = attempt_observers(settings, producer, metrics, asyncio.get_running_loop())
    tracer, run = None, None
    if tracing is not None:
        from dispatcher.engine.traced import replay_tracer

        tracer, run = replay_tracer(tracing, len(the_plan.send))
    deliverer = Deliverer(
        metrics,
        (),
        settings.local_retries,
        observers=recorders,
        tracer=tracer,
        cut_observers=[recorder.cut for recorder in recorders],
    )
    state = [start]
    acked, written = [0], [0]
    slots = Slots(CONCURRENCY)

    def count(outcome: Outcome) -> None:
        now = state[0]
        if outcome.outcome == "delivered":
            state[0] = replace(now, delivered=now.delivered + 1)
        else:
            state[0] = replace(now, failed=now.failed + 1)
        if report is not None:
            report(state[0])

    stopped = asyncio.create_task(_stopped(stop, writer, settings.drain_timeout))

    def wanted() -> bool:
        return not stopped.done()

    keys: dict[tuple[str, bytes], asyncio.Lock] = {}

    async def one(pair: Pair) -> None:
        key = pair.ordering_key
        if key is None:
            await sent(pair)
            return
        async with keys.setdefault(key, asyncio.Lock()):  # taken in the order the tasks start
            await sent(pair)

    async def sent(pair: Pair) -> None:
        async with slots:
            if not wanted():
                return  # not sent: the next run sends it
            try:
                outcome = await _deliver_one(pair, deliverer, pool, wanted)
            except Withdrawn:
                return  # stopped before its next attempt: no outcome, the next run sends it
            written[0] += 1
            await writer.write(outcome, pair.record, lambda: _inc(acked))
            count(outcome)

    poller = asyncio.create_task(_serve_acks(writer))
    window = Window(WINDOW)
    began = time.monotonic()
    try:
        for i, (letter, event) in enumerate(the_plan.sending()):
            if rate:
                await asyncio.wait([stopped], timeout=began + i / rate - time.monotonic())
            if not wanted():
                break
            if not await window.start(partial(one, _pair(letter, event, hooks)), stopped):
                break
        await _ended(window.running, stopped, settings.drain_timeout)
        window.raise_failure()
        if stopped.done() and state[0].not_sent:
            state[0] = replace(state[0], stopped=True)
    finally:
        stopped.cancel()
        poller.cancel()
        await pool.aclose()
        if run is not None:
            run.set_attribute("dispatcher.replay.delivered", state[0].delivered)
            run.set_attribute("dispatcher.replay.failed", state[0].failed)
            run.end()
    await asyncio.to_thread(_await_acks, writer, acked, written[0])
    return state[0]


async def _stopped(stop: threading.Event, writer: OutcomeWriter, drain: float) -> None:
    """Ends once `stop` is set, or the producer failed for good, saying so: a signal handler
    sets `stop` between two steps of this loop, which has no other way to learn of it."""
    while not stop.is_set() and writer.fatal is None:
        await asyncio.sleep(STOP_POLL)
    if writer.fatal is not None:
        say_producer_failed(
            writer.fatal, "the replay: what it sent and did not record is left for the next run"
        )
        return
    log.warning(
        "replay stopping: the requests under way end (up to %gs); letters not sent yet are left"
        " for the next run",
        drain,
    )


async def _ended(
    tasks: list[asyncio.Task[None]], stopped: asyncio.Task[None], drain: float
) -> None:
    """Wait for every task; once stopped, `drain` seconds at most (letters not started end at
    once), then cut the rest, as a worker's drain does."""
    if not tasks:
        return
    every: asyncio.Future[list[None]] = asyncio.gather(*tasks)
    first: list[asyncio.Future[Any]] = [every, stopped]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if not every.done():
        await asyncio.wait([every], timeout=drain)
    if not every.done():
        log.warning("replay stopped: requests still under way after %gs were cut", drain)
        every.cancel()
        await asyncio.gather(every, return_exceptions=True)
        return
    await every


def _pair(letter: DeadLetter, event: Event, hooks: HookIndex) -> Pair:
    """The pair a letter stands for, to its hook as defined now."""
    hook = hooks.get(letter.hook_id)
    assert hook is not None  # the plan sends only letters whose hook is in force
    return Pair(letter.for_replay(), event, hook, letter.source, letter.idempotency_key)


async def _deliver_one(
    pair: Pair, deliverer: Deliverer, pool: ClientPool, wanted: Callable[[], bool]
) -> Outcome:
    result = await deliverer.deliver(pair, pool.client_for(pair.hook), wanted)
    assert isinstance(result, Outcome)  # without retry tiers there is no hand-off
    return result


async def _serve_acks(writer: OutcomeWriter) -> None:
    """Serve delivery reports while the replay runs (the writer's callbacks run inside poll),
    until the producer failed for good (`_stopped` tells of it)."""
    while writer.fatal is None:
        writer.poll(0)
        writer.flush_unsent()
        await asyncio.sleep(0.02)


def _await_acks(writer: OutcomeWriter, acked: list[int], expected: int) -> None:
    """Wait for the outcomes written to be acknowledged; `KafkaUnavailable` when they are not
    in time, or the producer failed for good (then at once: none ever will be)."""
    deadline = time.monotonic() + ACK_TIMEOUT
    while acked[0] < expected and writer.fatal is None:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(
                f"{expected - acked[0]} replay outcomes were not acknowledged by Kafka"
            )
        writer.poll(0.1)
        writer.flush_unsent()
    if writer.fatal is None:
        writer.flush(ACK_TIMEOUT)
    if writer.fatal is not None:
        raise KafkaUnavailable.failed_for_good(writer.fatal)


def _harmless(report: Report) -> Report:
    """`report`, its failures logged: counting progress must never cut a replay short (letters
    unsent, outcomes unflushed)."""

    def told(summary: Summary) -> None:
        try:
            report(summary)
        except Exception:
            log.exception("replay progress could not be reported")

    return told


def _inc(counter: list[int]) -> None:
    counter[0] += 1
