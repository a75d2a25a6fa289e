"""The engine under pressure: isolation between hooks, retry tiers, per-key ordering."""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
from pathlib import Path

import pytest
from dispatch_support import Deployment, breaking_hook, cloud_event, collect_until, hook
from kafka_support import Outgoing, consume_all, wait_for

from dispatcher.devtools.receiver import Behaviour, Received, Receiver
from dispatcher.model.hook import CircuitSpec


def test_a_hanging_hook_does_not_hold_back_a_healthy_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/hang": Behaviour(hang=True)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("healthy", f"{receiver.url}/ok", ["order.paid"]),
                hook(
                    "stuck",
                    f"{receiver.url}/hang",
                    ["order.paid"],
                    timeout="6s",
                    retry={"max_attempts": 1},
                ),
            ],
            partitions=2,
            extra={"local_retries": 1},
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(20)]
        deployment.produce_events(events)
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap,
                deployment.results,
                lambda rs: sum(r.json()["hook_id"] == "healthy" for r in rs) >= 20,
                60,
            )
            stuck_ended = [r for r in results if r.json()["hook_id"] == "stuck"]
            assert stuck_ended == []  # B is still retrying while all of A is delivered
            healthy = [r.json() for r in results if r.json()["hook_id"] == "healthy"]
            assert all(r["outcome"] == "delivered" and r["latency_ms"] < 2000 for r in healthy)
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 20, 90
            )
        assert {d.header("dispatcher.error.kind") for d in dead} == {b"timeout"}
        assert {d.header("dispatcher.attempts") for d in dead} == {b"1"}


# Three requests an event (two failures, then the tier's success), fewer in all than the circuit
# breaker counts before it judges: its circuit never opens, which would hold the pairs back for
# its `open_for` (the open circuit has tests of its own, below).
FLAKY_EVENTS = (CircuitSpec().minimum_calls - 1) // 3


def test_a_flaky_endpoint_gets_everything_through_a_retry_tier_with_one_webhook_id(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/flaky": Behaviour(fail_first=2)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("flaky", f"{receiver.url}/flaky", ["order.paid"]),
            ],
            extra={"local_retries": 1},
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(FLAKY_EVENTS)]
        deployment.produce_events(events)
        with deployment.worker() as worker:
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= FLAKY_EVENTS, 90
            )
            retries = sum(
                s.value
                for m in worker.metrics.retries_scheduled.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
        assert {r.json()["outcome"] for r in results} == {"delivered"}
        assert {r.json()["attempts"] for r in results} == {3}
        assert retries >= FLAKY_EVENTS  # every pair went through at least one tier
        by_body: dict[bytes, set[str]] = {}
        for request in receiver.received("/flaky"):
            by_body.setdefault(request.body, set()).add(request.headers["webhook-id"])
        assert len(by_body) == FLAKY_EVENTS
        assert all(len(ids) == 1 for ids in by_body.values())
        assert sum(1 for _ in receiver.received("/flaky")) == 3 * FLAKY_EVENTS


def test_an_ordered_hook_delivers_each_key_in_offset_order_despite_failures(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chance = random.Random(7)
    lock = threading.Lock()
    delivered: list[tuple[str, int]] = []
    failed: dict[int, int] = {}

    def respond(request: Received) -> Behaviour | None:
        body = json.loads(request.body)
        with lock:  # each event fails up to 3 times (of its 8 attempts): none may run out
            if failed.get(body["seq"], 0) < 3 and chance.random() < 0.3:
                failed[body["seq"]] = failed.get(body["seq"], 0) + 1
                return Behaviour(status=503)
            delivered.append((body["key"], body["seq"]))
        return None

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "ledger", f"{receiver.url}/ledger", ["ledger.*"], ordering="key", concurrency=50
                ),
            ],
            partitions=2,
        )
        keys = [f"acct-{i % 5}" for i in range(100)]
        events = [cloud_event("ledger.posted", {"key": k, "seq": i}) for i, k in enumerate(keys)]
        deployment.produce_events(events, keys=keys)
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 100, 120
            )
        assert [r.json() for r in results if r.json()["outcome"] != "delivered"] == []
        assert sum(failed.values()) >= 10  # the failures happened, and were retried in order
        wait_for(lambda: len(delivered) >= 100, 10, message="all successes recorded")
        for key in set(keys):
            sequence = [seq for k, seq in delivered if k == key]
            assert sequence == sorted(sequence), key
            assert len(sequence) == 20


def metric(worker: object, name: str, **labels: str) -> float:
    registry = worker.metrics.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels) or 0.0


EVENTS = 100  # 60 before the circuit opens, 40 while it is open


def test_an_open_circuit_sends_pairs_to_the_tiers_in_bundles_and_all_arrive_once_it_closes(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the circuit is open, pairs cycle through the tier with no request, many to a tier
    record (a bundle), and events that arrive meanwhile go there too, from the consumer thread
    (`ConsumerLoop._hold_back`); when the endpoint answers again, every event arrives exactly
    once."""
    down = threading.Event()
    down.set()
    delivered: list[tuple[bytes, str]] = []
    lock = threading.Lock()

    def respond(request: Received) -> Behaviour | None:
        if down.is_set():
            return Behaviour(status=503)
        with lock:
            delivered.append((request.body, request.headers["webhook-id"]))
        return None

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [{**breaking_hook(f"{receiver.url}/down"), "circuit": {"open_for": "5s"}}],
            extra={"local_retries": 0},
            retry=("1s",),
        )
        deployment.produce_events([cloud_event("order.paid", {"i": i}) for i in range(60)])
        caplog.set_level(logging.DEBUG, logger="dispatcher.engine.consumer")
        with deployment.worker() as worker:
            wait_for(
                lambda: metric(worker, "dispatcher_circuit_open", hook="down") == 1,
                60,
                message="the breaker to open",
            )
            sent = len(receiver.received())
            scheduled = metric(worker, "dispatcher_retries_scheduled_total", hook="down", tier="1s")
            # fresh events while the circuit is open: held at intake, no request of their own
            deployment.produce_events(
                [cloud_event("order.paid", {"i": i}) for i in range(60, EVENTS)]
            )
            wait_for(
                lambda: (
                    metric(worker, "dispatcher_retries_scheduled_total", hook="down", tier="1s")
                    >= scheduled + EVENTS
                ),
                60,
                message="pairs cycling through the tier while the breaker is open",
            )
            probes = len(receiver.received()) - sent
            down.clear()  # the endpoint is back: the breaker's probes close the circuit
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= EVENTS, 120
            )
            tier_topic, retry_group = f"{deployment.retry_prefix}.1s", f"{deployment.group}.retry"
            wait_for(  # every bundle's pairs ended, so every bundle is committed
                lambda: (
                    deployment.committed(tier_topic, retry_group) == deployment.written(tier_topic)
                ),
                30,
                message="the tier committed to its end",
            )
        written = deployment.written(tier_topic)
        tier = consume_all(kafka_bootstrap, tier_topic, written, timeout=30)
    assert len(tier) == written  # every record of the tier read
    # in-flight requests when it opened, then a few half-open probes: far fewer than 60 pairs
    assert probes <= 20
    assert scheduled >= 20
    bundled = [int(r.header("dispatcher.bundle") or b"1") for r in tier]
    assert max(bundled) >= 2  # pairs held back together travelled together
    held_at_intake = [r for r in caplog.records if "fresh pairs to its first" in r.getMessage()]
    assert held_at_intake  # the second wave never went to the delivery loop
    assert {r.json()["outcome"] for r in results} == {"delivered"}
    assert len({r.json()["event_id"] for r in results}) == EVENTS
    ids_by_body: dict[bytes, list[str]] = {}
    for body, webhook_id in delivered:
        ids_by_body.setdefault(body, []).append(webhook_id)
    assert len(ids_by_body) == EVENTS
    assert all(len(ids) == 1 for ids in ids_by_body.values())  # each once, nothing twice


def test_a_probe_cut_by_a_rebalance_does_not_keep_the_circuit_open(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The half-open circuit's probes hang at the endpoint when a second worker joins and
    takes one of the two partitions: the first worker cuts the requests of the partition it
    gives up (its new owner sends them again). Once the endpoint answers, the first worker's
    circuit closes on its next probes and the events of the partition it kept are delivered.
    (A probe cut with no result once left the circuit refusing for good: every later event of
    the hook on that worker went to the retry tiers, to expire there.)"""
    opening = 6  # failures that open the circuit (its `minimum_calls`), open for 2 s
    probes = CircuitSpec().probes
    back = threading.Event()
    answers = itertools.count(1)
    lock = threading.Lock()

    def respond(_request: Received) -> Behaviour:
        with lock:
            number = next(answers)
        return Behaviour(status=503) if number <= opening else Behaviour(release=back)

    def put(partition: int, data: dict[str, int]) -> str:
        event = cloud_event("order.paid", {"p": partition, **data})
        content = (("content-type", b"application/cloudevents+json"),)
        deployment.produce_raw([Outgoing(json.dumps(event), headers=content, partition=partition)])
        return str(event["id"])

    def delivered(event_id: str) -> None:
        collect_until(
            kafka_bootstrap,
            deployment.results,
            lambda rs: any(
                r.json()["event_id"] == event_id and r.json()["outcome"] == "delivered" for r in rs
            ),
            60,
        )

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "erp",
                    f"{receiver.url}/erp",
                    ["order.paid"],
                    timeout="60s",  # a probe outlasts the revoke's wait
                    concurrency=5,
                    retry={"max_attempts": 1, "max_age": "2h"},
                    circuit={"minimum_calls": opening, "open_for": "2s"},
                )
            ],
            partitions=2,
            retry=("1h",),  # pairs held back stay there for the test
            extra={"local_retries": 0, "drain_timeout": "2s"},  # a revoke waits 2 s, then cuts
        )
        with deployment.worker() as first:
            for i in range(opening):
                put(i % 2, {"i": i})
            wait_for(
                lambda: metric(first, "dispatcher_circuit_open", hook="erp") == 1,
                60,
                message="the breaker to open",
            )
            sent = itertools.count()

            def probes_out() -> bool:  # an event on each partition until the probes hang
                n = next(sent)
                put(0, {"n": n})
                put(1, {"n": n})
                return len(receiver.received()) >= opening + probes

            wait_for(probes_out, 60, interval=0.5, message="the half-open circuit's probes")
            out = receiver.received()[opening : opening + probes]
            assert {json.loads(r.body)["p"] for r in out} == {0, 1}  # on both partitions
            ids = {r.headers["webhook-id"]: json.loads(r.body)["p"] for r in out}
            with deployment.worker():
                again = wait_for(
                    lambda: [
                        r
                        for r in receiver.received()[opening + probes :]
                        if r.headers["webhook-id"] in ids
                    ],
                    60,
                    message="a probe cut by the revoke, sent again by the partition's new owner",
                )
                kept = 1 - ids[again[0].headers["webhook-id"]]
                back.set()  # the endpoint answers again
                for n in range(probes):  # each one a probe of the first worker's, or sent
                    delivered(put(kept, {"after": n}))
                assert metric(first, "dispatcher_circuit_open", hook="erp") == 0


def test_a_pair_the_open_circuit_holds_back_is_never_sent_past_its_max_age(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A hook's 20 failing pairs expire at once (their 30 s tier would end past their 12 s
    `max_age`) and open its circuit. An event that arrives while it is open expires at once too,
    with no request: it was parked in the 30 s tier, and sent 30 s old once the circuit let
    probes out again."""
    down = threading.Event()
    down.set()

    def respond(_request: Received) -> Behaviour | None:
        return Behaviour(status=503) if down.is_set() else None

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "sms",
                    f"{receiver.url}/sms",
                    ["order.paid"],
                    concurrency=5,
                    retry={"max_attempts": 50, "max_age": "12s"},
                )
            ],
            retry=("30s",),
            extra={"local_retries": 0},
        )
        opening = CircuitSpec().minimum_calls
        deployment.produce_events([cloud_event("order.paid", {"i": i}) for i in range(opening)])
        with deployment.worker() as worker:
            wait_for(
                lambda: metric(worker, "dispatcher_circuit_open", hook="sms") == 1,
                60,
                message="the breaker to open",
            )
            down.clear()  # back, but the open circuit sends nothing for a while
            late = cloud_event("order.paid", {"late": True})
            deployment.produce_events([late])
            results = collect_until(
                kafka_bootstrap,
                deployment.results,
                lambda rs: any(r.json()["event_id"] == late["id"] for r in rs),
                90,
            )
        (ended,) = [r.json() for r in results if r.json()["event_id"] == late["id"]]
        assert (ended["outcome"], ended["error_kind"], ended["attempts"]) == (
            "dead_lettered",
            "expired",
            0,
        )
        assert not [r for r in receiver.received() if json.loads(r.body).get("late")]
        assert {r.json()["error_kind"] for r in results} == {"expired"}


def test_a_rate_limited_hook_spreads_its_requests(kafka_bootstrap: str, tmp_path: Path) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("sms", f"{receiver.url}/sms", ["order.paid"], rate_limit="20/s"),
            ],
        )
        deployment.produce_events([cloud_event("order.paid", {"i": i}) for i in range(60)])
        with deployment.worker():
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 60, 60)
        times = sorted(r.at for r in receiver.received())
        # a burst of at most 20, then 20 per second: 60 requests need at least 2 seconds
        assert times[-1] - times[0] >= 1.9
        # and without the limit the 60 arrive within a fraction of a second
        assert len(times) == 60


def test_the_in_flight_window_bounds_the_requests_open_at_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """300 events queued, a 1 s endpoint, a window of 50 in total (40 per partition): never
    more than 50 requests open at once, and every event still delivered."""
    with Receiver({"/erp": Behaviour(delay=1.0)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.paid"], concurrency=1000)],
            partitions=2,
            extra={"max_inflight": 50, "max_inflight_per_partition": 40},
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(300)]
        deployment.produce_events(events, keys=[f"k{i}" for i in range(300)])
        with deployment.worker():
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 300, 120)
        arrivals = sorted(r.at for r in receiver.received())
        # each request is open at least 1 s: all arrivals within 0.9 s are open together
        open_at_once = max(
            sum(1 for t in arrivals[i:] if t - start < 0.9) for i, start in enumerate(arrivals)
        )
        assert 40 <= open_at_once <= 51  # the window was used, and held (one record of slack)


def test_a_window_of_one_event_a_partition_delivers_every_event(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`max_inflight_per_partition: 1`: each partition one event at a time, and every event
    delivered (a window of one resumed below 0, so never, after its first event)."""
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.paid"])],
            partitions=2,
            extra={"max_inflight": 2, "max_inflight_per_partition": 1},
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(8)]
        deployment.produce_events(events, keys=[f"k{i}" for i in range(8)])
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 8, 60
            )
        delivered = sorted(json.loads(r.value)["event_id"] for r in results)
        assert delivered == sorted(e["id"] for e in events)
        assert len(receiver.received()) == 8


@pytest.mark.parametrize("consume", ["group", "share"])
def test_pairs_waiting_in_a_tier_the_configuration_no_longer_names_are_still_delivered(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, consume: str
) -> None:
    """`topics.retry` changes from [2s] to [1s, 3s] while pairs wait in the 2s tier. The next
    worker reads that retired tier in its retry group (queue mode's too), without writing to
    it: each pair is sent when its record is due, fails once more and goes on to the 3s tier
    (the first at least as long as 2s, not back to 1s), and ends in exactly one result. (No
    worker read the retired tier: its pairs waited there for good, with no result and no dead
    letter.)"""
    down = threading.Event()
    down.set()
    lock = threading.Lock()
    refused_again: set[bytes] = set()
    delivered: list[bytes] = []

    def respond(request: Received) -> Behaviour | None:
        if down.is_set():
            return Behaviour(status=503)
        with lock:
            if request.body not in refused_again:
                refused_again.add(request.body)
                return Behaviour(status=503)
            delivered.append(request.body)
        return None

    pairs = 4  # far fewer failures than open the circuit
    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["order.paid"], retry={"max_attempts": 50})],
            retry=("2s",),
            extra={"local_retries": 0, "consume": consume},
        )
        deployment.produce_events([cloud_event("order.paid", {"i": i}) for i in range(pairs)])
        with deployment.worker() as worker:
            wait_for(
                lambda: (
                    metric(worker, "dispatcher_retries_scheduled_total", hook="crm", tier="2s")
                    >= pairs
                ),
                60,
                message="every pair handed to the 2s tier",
            )
        retired, retry_group = f"{deployment.retry_prefix}.2s", f"{deployment.group}.retry"
        assert deployment.written(deployment.results) == 0

        deployment.retry = ("1s", "3s")
        deployment.write()
        down.clear()  # each pair is refused once more, then taken
        written_before = deployment.written(retired)
        with (
            caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"),
            deployment.worker() as worker,
        ):
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= pairs, 60
            )
            moved_on = {
                tier: metric(worker, "dispatcher_retries_scheduled_total", hook="crm", tier=tier)
                for tier in ("1s", "3s")
            }
        # read to its end (its group has no lag on it), never written to
        assert deployment.committed(retired, retry_group) == written_before
        assert deployment.written(retired) == written_before
        assert deployment.written(deployment.results) == pairs  # each pair ended once
    assert {r.json()["outcome"] for r in results} == {"delivered"}
    assert len({r.json()["event_id"] for r in results}) == pairs
    assert moved_on == {"1s": 0, "3s": pairs}
    assert len(delivered) == len(set(delivered)) == pairs
    told = [r.getMessage() for r in caplog.records if retired in r.getMessage()]
    assert len(told) == 1
    assert f"{retry_group} has no lag" in told[0]
