"""Nothing is lost: SIGKILL mid-run, and an orderly SIGTERM drain."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
from dispatch_support import (
    FAILOVER,
    Deployment,
    breaking_hook,
    cloud_event,
    collect_until,
    hook,
    status_port,
    stop,
)
from kafka_support import wait_for

from dispatcher.devtools.receiver import Behaviour, Received, Receiver

EVENTS = 5000


def event_ids(records: list) -> set[str]:
    return {r.json()["event_id"] for r in records}


def test_sigkill_twice_mid_run_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["customer.created"], concurrency=100),
            ],
            partitions=4,
            extra=FAILOVER,
        )
        events = [cloud_event("customer.created", {"i": i}) for i in range(EVENTS)]
        deployment.produce_events(events, keys=[f"k{i % 97}" for i in range(EVENTS)])
        for kill_after in (EVENTS // 5, EVENTS // 2):
            process = deployment.process()
            wait_for(
                lambda n=kill_after: len(receiver.received()) >= n,
                120,
                message=f"{kill_after} requests before the kill",
            )
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        process = deployment.process()
        expected = {e["id"] for e in events}
        results = collect_until(
            kafka_bootstrap,
            deployment.results,
            lambda rs: len(rs) >= EVENTS and event_ids(rs) >= expected,
            240,
        )
        assert stop(process) == 0
        assert expected - event_ids(results) == set()  # lost = 0
        webhook_ids: dict[str, set[str]] = {}
        for request in receiver.received("/crm"):
            event_id = request.body  # the body is the event's data, unique per event
            webhook_ids.setdefault(event_id.decode(), set()).add(request.headers["webhook-id"])
        assert len(webhook_ids) == EVENTS
        assert all(len(ids) == 1 for ids in webhook_ids.values())  # duplicates share webhook-id


def test_sigterm_drains_in_flight_requests_and_a_restart_redelivers_nothing_recorded(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/slow": Behaviour(delay=1.0)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("erp", f"{receiver.url}/slow", ["order.paid"], concurrency=200),
            ],
            partitions=2,
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(200)]
        deployment.produce_events(events)
        process = deployment.process()
        wait_for(lambda: len(receiver.received()) >= 50, 60, message="requests in flight")
        in_flight = {r.headers["webhook-id"] for r in receiver.received()}
        assert stop(process, signal.SIGTERM) == 0
        recorded = collect_until(
            kafka_bootstrap, deployment.results, lambda rs: len(rs) >= len(in_flight), 30
        )
        assert in_flight <= {r.json()["idempotency_key"] for r in recorded}
        before, assigned = len(receiver.received()), len(deployment.assignments())
        process = deployment.process()
        results = collect_until(
            kafka_bootstrap,
            deployment.results,
            lambda rs: event_ids(rs) >= {e["id"] for e in events},
            120,
        )
        # The restart has had its say only once it holds the partitions and has committed them
        # to their end: the first run may have recorded everything in its drain already.
        wait_for(
            lambda: len(deployment.assignments()) > assigned, 60, message="the restart assigned"
        )
        wait_for(lambda: deployment.committed() == len(events), 60, message="the restart caught up")
        assert stop(process) == 0
        counts: dict[str, int] = {}
        for request in receiver.received():
            counts[request.headers["webhook-id"]] = counts.get(request.headers["webhook-id"], 0) + 1
        recorded_keys = {r.json()["idempotency_key"] for r in recorded}
        assert all(counts[key] == 1 for key in recorded_keys)  # nothing recorded came again
        assert len(receiver.received()) - before == len(events) - len(recorded_keys)
        assert len(results) == len(events)


def test_sigkill_while_a_circuit_is_open_loses_none_of_the_events_held_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Events that arrive while a hook's circuit is open go to its first retry tier from the
    consumer thread, in bundles; a SIGKILL then, and a restart once the endpoint answers
    again, lose none of them, and any event delivered twice keeps its webhook-id."""
    down = threading.Event()
    down.set()

    def respond(_request: Received) -> Behaviour | None:
        return Behaviour(status=503) if down.is_set() else None

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [breaking_hook(f"{receiver.url}/down")],
            partitions=2,
            retry=("1s",),
            extra={**FAILOVER, "local_retries": 0},
        )
        first = [cloud_event("order.paid", {"i": i}) for i in range(40)]
        deployment.produce_events(first)
        process = deployment.process("--log-level", "DEBUG")
        port = status_port(deployment.log_path)
        wait_for(
            lambda: (
                'dispatcher_circuit_open{hook="down"} 1.0'
                in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            ),
            60,
            message="the breaker to open",
        )
        second = [cloud_event("order.paid", {"i": i}) for i in range(40, 240)]
        deployment.produce_events(second)
        wait_for(
            lambda: "fresh pairs to its first retry tier" in deployment.log(),
            60,
            message="new events held back by the consumer",
        )
        # every event committed: from here on only the tier holds what was held back
        wait_for(lambda: deployment.committed() >= 240, 60, message="every event committed")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        down.clear()
        process = deployment.process()
        expected = {e["id"] for e in first + second}
        results = collect_until(  # within the test's own 120 s limit, so a loss says so
            kafka_bootstrap, deployment.results, lambda rs: event_ids(rs) >= expected, 70
        )
        assert stop(process) == 0
    assert expected - event_ids(results) == set()  # lost = 0
    assert {r.json()["outcome"] for r in results} == {"delivered"}
    webhook_ids: dict[bytes, set[str]] = {}
    for request in receiver.received("/down"):
        if request.headers.get("webhook-id"):
            webhook_ids.setdefault(request.body, set()).add(request.headers["webhook-id"])
    assert len(webhook_ids) == len(expected)
    assert all(len(ids) == 1 for ids in webhook_ids.values())  # duplicates share webhook-id
