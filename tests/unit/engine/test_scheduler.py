"""The scheduler never lets a pair vanish: a defect becomes an `internal` dead letter."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
from fake_clock import Clock
from prometheus_client import CollectorRegistry

from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.scheduler import Scheduler
from dispatcher.http.sender import HookClient
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source
from dispatcher.model.pair import Pair
from dispatcher.model.request import Request
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.retry import Handoff


class Writer:
    def __init__(self, room: bool = True) -> None:
        self.written: list[Any] = []
        self.handed_off: list[Any] = []  # through `hand_off`, with no task
        self.room = room  # False: the producer's queue is full, `hand_off` returns them all
        self.calls = 0  # of `hand_off`

    async def write(self, result: Any, record: Record, done: Any) -> None:
        self.put(result, record, done)

    def put(self, result: Any, record: Record, done: Any) -> None:
        self.written.append(result)
        done()

    def hand_off(self, handoffs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        self.calls += 1
        if not self.room:
            return handoffs
        for result, done in handoffs:
            self.handed_off.append(result)
            done()
        return []


class RecordingSink:
    """A sink writing through `writer` (a new `Writer`) that keeps each pair it finishes."""

    def __init__(self, writer: Writer | None = None) -> None:
        self.writer = writer or Writer()
        self.finished: list[Pair] = []

    def finish(self, p: Pair) -> Any:
        return lambda: self.finished.append(p)


def test_a_pair_whose_client_cannot_be_built_is_dead_lettered_as_internal() -> None:
    hook = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://h.example.com/"})
    record = Record("t", 0, 7, None, b"{}", ())
    pair = Pair(record, Event("e1", "x", "/s"), hook, Source("t", 0, 7), "msg_1")
    writer = Writer()
    sink = RecordingSink(writer)

    def broken_client(_hook: Hook) -> Any:
        raise RuntimeError("no client for you")

    async def run() -> None:
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), broken_client)
        scheduler.start([pair], sink)  # type: ignore[arg-type]
        await scheduler.drain(5)

    asyncio.run(run())
    (outcome,) = writer.written
    assert isinstance(outcome, Outcome)
    assert outcome.outcome == "dead_lettered"
    assert outcome.error_kind == "internal"
    assert "no client for you" in (outcome.error or "")
    assert sink.finished == [pair]


class GatedClient(HookClient):
    """A hook client with the hook's real slots, whose exchanges end when `answers` is set."""

    def __init__(self, hook: Hook) -> None:
        super().__init__(hook, httpx.MockTransport(lambda _r: httpx.Response(200)))
        self.answers = asyncio.Event()
        self.sent: list[str] = []

    async def _exchange(self, request: Request) -> Verdict:
        self.sent.append(request.header("webhook-id") or "")
        await self.answers.wait()
        return Verdict(ok=True, status=200)


def test_release_withdraws_the_pairs_not_started_and_waits_for_those_sending() -> None:
    hook = Hook.from_dict(
        {"id": "h", "events": ["x"], "url": "https://h.example.com/", "concurrency": 3}
    )

    def pair(partition: int, offset: int) -> Pair:
        record = Record("t", partition, offset, None, b"{}", ())
        return Pair(
            record, Event(f"e{partition}-{offset}", "x", "/s"), hook, Source("t", 0, 0), "m"
        )

    async def run() -> tuple[int, list[str], RecordingSink, RecordingSink]:
        client = GatedClient(hook)
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), lambda _h: client)
        leaving, staying = RecordingSink(), RecordingSink()
        # three slots: two pairs of the leaving partition and one of another sink are sending;
        # the third pair of the leaving partition waits for a slot
        scheduler.start([pair(0, 1), pair(0, 2)], leaving)  # type: ignore[arg-type]
        scheduler.start([pair(0, 1)], staying)  # type: ignore[arg-type]
        scheduler.start([pair(0, 3)], leaving)  # type: ignore[arg-type]

        async def sending(count: int) -> None:
            while len(client.sent) < count:
                await asyncio.sleep(0)

        await asyncio.wait_for(sending(3), 5)
        releasing = asyncio.create_task(
            scheduler.release(leaving, {("t", 0)}, wait=5)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0)  # the partition is withdrawn; then the sending ones end
        client.answers.set()
        cut = await releasing
        await scheduler.drain(5)
        return cut, client.sent, leaving, staying

    cut, sent, leaving, staying = asyncio.run(run())
    assert cut == 0  # the two sending ended within the wait
    assert len(sent) == 3  # the one waiting for a slot never started: its partition left
    assert sorted(o.event_id for o in leaving.writer.written) == ["e0-1", "e0-2"]  # any order
    assert [o.event_id for o in staying.writer.written] == ["e0-1"]


def pairs_of(count: int, **hook: Any) -> list[Pair]:
    """`count` pairs of one hook (`hook`: its fields beyond id, events and url), offsets 0 up."""
    defined = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://h.example.com/", **hook})
    return [
        Pair(
            Record("t", 0, n, None, b"{}", ()),
            Event(f"e{n}", "x", "/s"),
            defined,
            Source("t", 0, n),
            "m",
        )
        for n in range(count)
    ]


def open_circuit_run(
    writer: Writer, tiers: tuple[float, ...] = (30.0,), drain: float = 5
) -> tuple[list[Pair], list[str], int]:
    """Three pairs of a hook whose circuit is open, started: the pairs finished, the requests
    sent, and the tasks left running right after `start`."""
    pairs = pairs_of(3)
    hook = pairs[0].hook
    sink = RecordingSink(writer)
    sent: list[str] = []

    class Client(HookClient):
        async def _exchange(self, request: Request) -> Verdict:
            sent.append(request.header("webhook-id") or "")
            return Verdict(ok=True, status=200)

    async def run() -> int:
        client = Client(hook, httpx.MockTransport(lambda _r: httpx.Response(200)))
        for _ in range(client.breaker.settings.minimum_calls):
            client.breaker.record(False)
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), tiers, 0), lambda _h: client)
        scheduler.start(pairs, sink)  # type: ignore[arg-type]
        running = len(scheduler.tasks)
        await scheduler.drain(drain)
        return running

    running = asyncio.run(run())
    return sink.finished, sent, running


def test_pairs_of_an_open_circuit_are_handed_off_at_start_without_a_task_or_a_request() -> None:
    writer = Writer()

    finished, sent, running = open_circuit_run(writer)

    assert running == 0
    assert sent == []
    assert [h.pair.event.id for h in writer.handed_off] == ["e0", "e1", "e2"]
    assert all(isinstance(h, Handoff) and h.tier == 0 for h in writer.handed_off)
    assert [p.event.id for p in finished] == ["e0", "e1", "e2"]
    assert writer.calls == 1  # together: one bundle of the hook's pairs


def test_a_hand_off_the_producer_has_no_room_for_waits_in_a_task_and_is_not_lost() -> None:
    writer = Writer(room=False)

    finished, sent, running = open_circuit_run(writer)

    assert running == 3
    assert sent == []
    assert writer.handed_off == []
    assert [h.pair.event.id for h in writer.written] == ["e0", "e1", "e2"]
    assert all(isinstance(h, Handoff) for h in writer.written)
    assert [p.event.id for p in finished] == ["e0", "e1", "e2"]


def test_without_tiers_pairs_of_an_open_circuit_wait_in_delivery() -> None:
    writer = Writer()

    _finished, sent, running = open_circuit_run(writer, tiers=(), drain=0.1)

    assert running == 3  # each waits in `deliver` for the circuit to let a request go
    assert sent == []
    assert writer.handed_off == []


def test_pairs_beyond_the_slots_wait_as_offers_and_drain_sees_them_all_through() -> None:
    """Only as many tasks as the hook has slots; the other pairs start as slots free, and a
    drain waits for those too."""
    pairs = pairs_of(5, concurrency=2)

    async def run() -> tuple[int, int, RecordingSink]:
        client = GatedClient(pairs[0].hook)
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), lambda _h: client)
        sink = RecordingSink()
        scheduler.start(pairs, sink)  # type: ignore[arg-type]
        tasks = len(scheduler.tasks)
        client.answers.set()
        cut = await scheduler.drain(5)
        return tasks, cut, sink

    tasks, cut, sink = asyncio.run(run())
    assert tasks == 2
    assert cut == 0
    assert sorted(o.event_id for o in sink.writer.written) == ["e0", "e1", "e2", "e3", "e4"]


def test_a_drain_that_runs_out_of_time_cuts_the_pairs_sending_and_those_never_started() -> None:
    pairs = pairs_of(3, concurrency=1)

    async def run() -> tuple[int, list[str], RecordingSink]:
        client = GatedClient(pairs[0].hook)  # its answers never come
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), lambda _h: client)
        sink = RecordingSink()
        scheduler.start(pairs, sink)  # type: ignore[arg-type]
        cut = await scheduler.drain(0.05)
        await asyncio.sleep(0)  # a slot freed by the cut would start the next pair here
        return cut, client.sent, sink

    cut, sent, sink = asyncio.run(run())
    assert cut == 3  # one cancelled as it waited for its answer, two never started
    assert len(sent) == 1
    assert sink.writer.written == []  # no outcome for a cut pair: its offset is not committed


def test_a_pair_runs_on_the_client_it_started_with_and_is_counted_there_to_its_end() -> None:
    """What lets the client pool keep an edited hook's old client while its pairs run and close
    it after: the pair is never sent on a client asked for again later."""
    (pair,) = pairs_of(1, ordering="key")  # a task at once: it waits for its key's lock first

    async def run() -> tuple[int, int, list[str], list[str]]:
        first, later = GatedClient(pair.hook), GatedClient(pair.hook)
        clients = iter([first])
        scheduler = Scheduler(
            Deliverer(Metrics(CollectorRegistry()), (), 0), lambda _h: next(clients, later)
        )
        scheduler.start([pair], RecordingSink())  # type: ignore[arg-type]
        running = first.pairs
        first.answers.set()
        await scheduler.drain(5)
        return running, first.pairs, first.sent, later.sent

    running, after, sent_first, sent_later = asyncio.run(run())
    assert (running, after) == (1, 0)
    assert (sent_first, sent_later) == (["m"], [])


def test_a_pair_of_an_unusable_hook_is_dead_lettered_as_config_with_no_client() -> None:
    hook = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://h.example.com/"})
    hook = dataclasses.replace(hook, unusable="its definition does not load here")
    record = Record("t", 0, 7, None, b"{}", ())
    pair = Pair(record, Event("e1", "x", "/s"), hook, Source("t", 0, 7), "msg_1")
    writer = Writer()
    sink = RecordingSink(writer)

    def no_client(_hook: Hook) -> Any:
        raise AssertionError("no client is made for an unusable hook")

    async def run() -> None:
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (60.0,), 0), no_client)
        scheduler.start([pair], sink)  # type: ignore[arg-type]
        await scheduler.drain(5)

    asyncio.run(run())
    (outcome,) = writer.written
    assert isinstance(outcome, Outcome)
    assert (outcome.outcome, outcome.error_kind, outcome.attempts) == ("dead_lettered", "config", 0)
    assert "its definition does not load here" in (outcome.error or "")
    assert sink.finished == [pair]


def test_no_attempt_starts_once_the_pairs_until_has_come_and_those_not_sent_get_no_end() -> None:
    """Queue mode, a worker stalled past its records' lock: the pairs still waiting for a slot
    make no request and get no outcome (the broker gave their records to another worker); the
    one whose request went out before keeps its outcome."""
    pairs = pairs_of(3, concurrency=1)
    clock = Clock()

    async def run() -> tuple[int, list[str], RecordingSink]:
        client = GatedClient(pairs[0].hook)
        deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0,), 0)
        scheduler = Scheduler(deliverer, lambda _h: client, clock)
        sink = RecordingSink()
        scheduler.start(pairs, sink, until=clock.now + 10)  # type: ignore[arg-type]
        while not client.sent:
            await asyncio.sleep(0)
        clock.advance(10)  # frozen here, the first pair sending, the others waiting for its slot
        client.answers.set()
        cut = await scheduler.drain(5)
        return cut, client.sent, sink

    cut, sent, sink = asyncio.run(run())
    assert len(sent) == 1
    assert [o.event_id for o in sink.writer.written] == ["e0"]
    assert sink.finished == pairs[:1]
    assert cut == 0


def test_pairs_that_come_in_after_their_until_are_not_started_at_all() -> None:
    """The delivery loop itself may have been the one stalled: no request, no hand-off of an
    open circuit, no dead letter of an unusable hook."""
    clock = Clock()
    usable = pairs_of(2)
    unusable = dataclasses.replace(
        usable[1], hook=dataclasses.replace(usable[1].hook, unusable="not here")
    )
    writer = Writer()

    async def run() -> tuple[int, int, list[str]]:
        client = GatedClient(usable[0].hook)
        for _ in range(client.breaker.settings.minimum_calls):
            client.breaker.record(False)  # open: its pairs would be handed off at once
        deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0,), 0)
        scheduler = Scheduler(deliverer, lambda _h: client, clock)
        scheduler.start([usable[0], unusable], RecordingSink(writer), until=clock.now)  # type: ignore[arg-type]
        return len(scheduler.tasks), len(scheduler.offers), client.sent

    tasks, offers, sent = asyncio.run(run())
    assert (tasks, offers, sent) == (0, 0, [])
    assert (writer.written, writer.handed_off) == ([], [])
