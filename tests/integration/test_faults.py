"""Faults during a run, each ending with lost = 0: every event has its result record."""

from __future__ import annotations

import base64
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dispatch_support import (
    FAILOVER,
    Deployment,
    cloud_event,
    collect_until,
    free_port,
    hook,
    stop,
)
from kafka_support import create_topic, wait_for

from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.receiver import Behaviour, Received, Receiver
from dispatcher.engine import assembly
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.worker import STOP_GRACE
from dispatcher.errors import KafkaUnavailable
from dispatcher.kafka.clients import producer_config
from dispatcher.model.outcome import VALUE_OMITTED

EVENTS = int(os.environ.get("DUGAA_FAULT_EVENTS", "20000"))  # as the issue asks


def delivered_ids(records: list) -> set[str]:
    return {r.json()["event_id"] for r in records if r.json()["outcome"] == "delivered"}


def every_event_delivered(deployment: Deployment, expected: set[str], timeout: float) -> None:
    """Lost = 0: waits until each of `expected` has a `delivered` result; TimeoutError if not."""
    collect_until(
        deployment.bootstrap,
        deployment.results,
        lambda records: delivered_ids(records) >= expected,
        timeout,
    )


def consuming(port: int, topic: str) -> bool:
    """Whether the worker whose /metrics are on `port` has taken records of `topic` in
    (`dispatcher_events_consumed_total`): it holds partitions, with work under way; False
    while it is not listening yet."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    except httpx.TransportError:
        return False
    wanted = f'dispatcher_events_consumed_total{{topic="{topic}"}} '
    return any(
        float(line[len(wanted) :]) > 0 for line in text.splitlines() if line.startswith(wanted)
    )


def produce(deployment: Deployment, count: int) -> set[str]:
    events = [cloud_event("order.paid", {"i": i}) for i in range(count)]
    for start in range(0, count, 5000):
        chunk = events[start : start + 5000]
        deployment.produce_events(chunk, keys=[f"k{i % 101}" for i in range(len(chunk))])
    return {e["id"] for e in events}


@pytest.mark.timeout(600)
def test_sigkill_of_one_of_two_workers_three_times_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("erp", f"{receiver.url}/erp", ["order.*"], concurrency=200),
            ],
            partitions=6,
            extra=FAILOVER,
        )
        expected = produce(deployment, EVENTS)
        steady = deployment.process()
        port = free_port()
        victim = deployment.process(env={"DISPATCHER_HTTP_PORT": str(port)})
        for round_ in range(1, 4):
            # each victim is killed at work: the steady worker alone soon makes the progress
            # asked for, and would else have a victim killed while it starts
            wait_for(
                lambda p=port: consuming(p, deployment.events),
                120,
                message=f"victim {round_} at work",
            )
            wait_for(
                lambda r=round_: len(receiver.received()) >= r * EVENTS // 5,
                240,
                message=f"progress before kill {round_}",
            )
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            port = free_port()
            victim = deployment.process(env={"DISPATCHER_HTTP_PORT": str(port)})
        every_event_delivered(deployment, expected, 300)
        assert stop(steady) == 0
        assert stop(victim) == 0


@pytest.mark.timeout(600)
def test_workers_added_and_removed_ten_times_lose_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    count = EVENTS // 2
    with Receiver({"/crm": Behaviour(delay=0.01)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["order.*"], concurrency=100),
            ],
            partitions=6,
            extra=FAILOVER,
        )
        expected = produce(deployment, count)
        workers = [deployment.process()]
        started = 1
        for change in range(10):
            seen = len(receiver.received())
            wait_for(
                lambda s=seen: len(receiver.received()) >= min(s + count // 14, count),
                120,
                message=f"progress before change {change}",
            )
            if change % 2 == 0:
                workers.append(deployment.process())
                started += 1
                wait_for(
                    lambda n=started: deployment.workers_started() >= n,
                    60,
                    message="the added worker to be up",
                )
            else:
                assert stop(workers.pop(0)) == 0
        every_event_delivered(deployment, expected, 300)
        for worker in workers:
            assert stop(worker) == 0


@pytest.mark.timeout(600)
def test_a_broker_restart_mid_run_loses_nothing(
    kafka_bootstrap: str, local_kafka: LocalKafka, tmp_path: Path
) -> None:
    count = EVENTS // 4
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["order.*"], concurrency=100),
            ],
            partitions=4,
        )
        expected = produce(deployment, count)
        worker = deployment.process()
        wait_for(lambda: len(receiver.received()) >= count // 3, 240, message="progress")
        assert local_kafka.restart() == kafka_bootstrap
        every_event_delivered(deployment, expected, 300)
        assert stop(worker) == 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("consume", ["group", "share"])
def test_sigterm_while_the_broker_is_down_exits_within_the_drain_and_one_grace(
    consume: str, kafka_bootstrap: str, local_kafka: LocalKafka, tmp_path: Path
) -> None:
    """The final commit and the leaving of the group wait on a group coordinator that is gone,
    and the withdrawal of the worker's hook-health reports on a broker that is gone: the worker
    gives them the rest of its drain time and one grace (`STOP_GRACE`), side by side, and exits
    0 without them (its uncommitted offsets are redelivered to the group's next member). The
    withdrawal's 5 s came after the consumers' close (7 s): a stop took the drain and 12 s."""
    drain = 1.0
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["order.*"])],  # its reports to withdraw
            extra={"drain_timeout": f"{drain:g}s", "consume": consume},
        )
        expected = produce(deployment, 10)
        worker = deployment.process()
        every_event_delivered(deployment, expected, 60)
        local_kafka.stop()
        try:
            assert stop(worker, timeout=drain + STOP_GRACE) == 0
        finally:
            assert local_kafka.start() == kafka_bootstrap
    said = deployment.log()
    assert "stop: drained in" in said
    assert "hook health" in said.partition("stop: drained in")[2]
    if consume == "group":  # a share consumer's close does not wait for a coordinator
        assert "did not close" in said


@pytest.mark.timeout(300)
def test_sigterm_with_a_thousand_requests_in_flight_drains_within_the_deadline(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/slow": Behaviour(delay=3.0)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("slow", f"{receiver.url}/slow", ["order.*"], concurrency=1000),
            ],
            partitions=4,
        )
        expected = produce(deployment, 1000)
        worker = deployment.process()
        wait_for(lambda: len(receiver.received()) >= 1000, 120, message="1,000 requests in flight")
        assert stop(worker, signal.SIGTERM, timeout=25) == 0  # drain_timeout is 20s
        every_event_delivered(deployment, expected, 30)


@pytest.mark.timeout(300)
def test_run_with_two_worker_processes_shares_the_work_and_stops_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["order.*"]),
            ],
            partitions=4,
        )
        expected = produce(deployment, 2000)
        process = deployment.process("--workers", "2")
        every_event_delivered(deployment, expected, 180)
        assert stop(process) == 0
        log = deployment.log()
        assert "worker-0" in log
        assert "worker-1" in log


def _worker_processes(pid: int) -> list[int]:
    """The worker processes `dispatcher run --workers N` (process `pid`) started: its children
    that multiprocessing spawned (not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("sent", "drained"),
    [(signal.SIGKILL, 1), (signal.SIGTERM, 2)],
    ids=["killed", "stopped-alone"],
)
def test_a_worker_process_that_ends_alone_stops_the_others_and_the_run_exits_1(
    kafka_bootstrap: str, tmp_path: Path, sent: signal.Signals, drained: int
) -> None:
    """One of `--workers 2` killed (a crash, the OOM killer), or sent SIGTERM by itself (a
    `kill PID`: it drains and exits 0): the other went on, and `run` never ended, so a pod whose
    probes watch worker 0 ran a worker short for good. The other stops as on SIGTERM and `run`
    exits 1, to be started again whole."""
    with Receiver() as receiver:
        # killed in a rebalance of its groups, a worker holds it up until its session ends; the
        # other's stop leaves the groups once it is over (else after 10 s, and 5 s more closing)
        deployment = _two_partitions(kafka_bootstrap, tmp_path, receiver, FAILOVER)
        process = deployment.process("--workers", "2")
        wait_for(lambda: deployment.workers_started() == 2, 60, message="two workers up")
        worker, *_ = _worker_processes(process.pid)
        os.kill(worker, sent)
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("`run` went on with one worker of two")
    log = deployment.log()
    assert code == 1, log
    ended = -sent if sent == signal.SIGKILL else 0
    assert f"exited with {ended}: stopping the other workers" in log
    assert log.count("dispatcher.engine.worker stopped") == drained  # each that drained


@pytest.mark.timeout(300)
def test_a_partition_paused_when_revoked_is_consumed_when_it_comes_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """librdkafka keeps a partition's pause across a revoke: a worker whose window was full when
    a partition left it must still consume that partition when the group gives it back."""
    count = 4000  # a batch is at most 500 records: the returning partition still has work
    with Receiver({"/erp": Behaviour(delay=0.2)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], concurrency=100)],
            partitions=2,
            extra={**FAILOVER, "max_inflight_per_partition": 10},
        )
        expected = produce(deployment, count)
        first = deployment.process()
        wait_for(lambda: len(receiver.received()) >= 100, 60, message="the first worker busy")
        second = deployment.process()
        wait_for(lambda: len(deployment.assignments()) >= 2, 60, message="the second's share")
        assert stop(second) == 0  # its partition goes back to the first worker, unpaused
        every_event_delivered(deployment, expected, 60)
        assert stop(first) == 0


@pytest.mark.timeout(300)
def test_pairs_still_running_when_their_partition_leaves_are_cut_not_duplicated(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """After the bounded wait of a revoke, the old owner cuts what still runs: only the new owner
    reports those pairs (a late report would duplicate its work and could break key order)."""
    joined = threading.Event()  # the second worker is started: its requests are answered at once
    # The first worker's requests are answered once it has cut those of the partition that
    # left it, and 8 s after the first of them at the latest: a revoke that waited longer than
    # its bound, min(10 s, drain_timeout), would then find nothing to cut.
    cut = threading.Event()
    at_the_latest = threading.Timer(8.0, cut.set)

    def respond(_request: Received) -> Behaviour | None:
        if joined.is_set():
            return None
        if at_the_latest.ident is None:
            at_the_latest.start()
        return Behaviour(release=cut)

    with Receiver() as receiver:
        receiver.responder = respond
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], concurrency=100)],
            partitions=2,
            extra={**FAILOVER, "drain_timeout": "2s"},  # the revoke waits min(10s, drain)
        )
        expected = produce(deployment, 40)
        first = deployment.process()
        wait_for(lambda: len(receiver.received()) >= 40, 60, message="every pair in flight")
        joined.set()
        second = deployment.process()
        try:
            wait_for(
                lambda: cut.is_set() or "deliveries cut: events-" in deployment.log(),
                60,
                message="the first worker's cut",
            )
        finally:
            cut.set()
            at_the_latest.cancel()
        wait_for(lambda: deployment.committed() == 40, 90, message="every pair finished")
        every_event_delivered(deployment, expected, 30)
        assert stop(first) == 0
        assert stop(second) == 0
        assert deployment.written(deployment.results) == 40  # one result record per event
        assert "deliveries cut: events-" in deployment.log()
        # each request cut has its attempt record, saying so; the new owner's has its own
        cut_count = sum(
            int(n) for n in re.findall(r"(\d+) deliveries cut: events-", deployment.log())
        )
        attempts = [
            r.json()
            for r in collect_until(
                kafka_bootstrap, deployment.attempts, lambda rs: len(rs) >= 40 + cut_count, 30
            )
        ]
        cut_short = [a for a in attempts if a["error_kind"] == "cut"]
        assert len(cut_short) == cut_count
        answered = {a["event_id"] for a in attempts if a["error_kind"] is None}
        assert {a["event_id"] for a in cut_short} <= answered


@pytest.mark.timeout(300)
def test_a_worker_stopping_while_another_joins_leaves_its_groups_before_it_closes(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close that has to answer a rebalance still under way is where librdkafka 2.16 can
    abort the process (`rd_kafka_cgrp_terminated: assert`, once in CI): a stopping worker
    gives its partitions back and leaves each group on its consumer thread first, so every
    consumer it closes holds no partition and is no member of any group any more."""
    at_close: list[tuple[str, list[Any], str | None]] = []
    close = ConsumerLoop.close

    def watched_close(loop: ConsumerLoop) -> None:
        consumer = loop.consumer
        at_close.append((", ".join(loop.topics), consumer.assignment(), consumer.memberid()))
        close(loop)

    monkeypatch.setattr(ConsumerLoop, "close", watched_close)
    with Receiver() as receiver:
        deployment = _two_partitions(kafka_bootstrap, tmp_path, receiver)
        expected = produce(deployment, 50)
        with deployment.worker():
            every_event_delivered(deployment, expected, 60)
            joining = deployment.process()
            wait_for(lambda: deployment.workers_started() == 1, 60, message="a second worker up")
        # stopped while the second joins: its partitions move in the middle of its stop
        assert stop(joining) == 0
    assert len(at_close) == 3  # events, retry tiers, operations
    assert [(topics, [], None) for topics, _, _ in at_close] == at_close


STOP_ROUNDS = int(os.environ.get("DUGAA_STOP_ROUNDS", "3"))  # 80 to soak: see the README


@pytest.mark.timeout(120)
@pytest.mark.parametrize("round_", range(STOP_ROUNDS))
def test_three_workers_stopped_together_in_their_first_rebalances_exit_cleanly(
    kafka_bootstrap: str, tmp_path: Path, round_: int
) -> None:
    """`--workers 3` stopped after the k-th assignment of its first rebalances (three groups
    each), at a different k each round: every worker leaves its groups and exits 0. Before the
    leave came first, 80 such rounds saw one worker abort in librdkafka's close and one hang
    until the stop watchdog (50 s)."""
    assignments = round_ * 3 % 8 + 1  # 1, 4, 7, 2, 5, 8, ...: early, mid and late (of 9)
    with Receiver() as receiver:
        deployment = _two_partitions(kafka_bootstrap, tmp_path, receiver)
        process = deployment.process("--workers", "3")
        wait_for(
            lambda: deployment.log().count(" assigned ") >= assignments,
            60,
            message=f"{assignments} assignments",
        )
        assert stop(process) == 0
    log = deployment.log()
    assert log.count("dispatcher.engine.worker stopped") == 3
    for trouble in ("still in its group", "did not close", "commit on revoke failed"):
        assert trouble not in log


def _mapped(pid: int, library: str) -> bool:
    """Whether process `pid` has loaded `library` (a moment of its imports)."""
    return library in Path(f"/proc/{pid}/maps").read_text()


def _has_children(pid: int) -> bool:
    return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


START_MOMENTS: dict[str, tuple[str, Callable[[Deployment, int], bool]]] = {
    # the command's modules half imported: ssl's extension is loaded, confluent-kafka's not yet
    # (a stop there was once mangled by CPython's import into a TypeError, and exit 1)
    "importing": ("1", lambda _d, pid: _mapped(pid, "_ssl.")),
    "reading the hook store": ("1", lambda d, _pid: "hook store" in d.log()),
    "starting its worker processes": ("2", lambda _d, pid: _has_children(pid)),
}


@pytest.mark.parametrize("moment", START_MOMENTS)
def test_a_stop_at_any_moment_of_the_start_exits_0(
    kafka_bootstrap: str, tmp_path: Path, moment: str
) -> None:
    """SIGTERM while `dispatcher run` starts: before a worker's handlers, the process ends
    there and then (nothing consumed); after, the worker stops as it would once started."""
    workers, reached = START_MOMENTS[moment]
    with Receiver() as receiver:
        deployment = _two_partitions(kafka_bootstrap, tmp_path, receiver)
        process = deployment.process("--workers", workers)
        wait_for(lambda: reached(deployment, process.pid), 30, message=moment)
        assert stop(process) == 0, deployment.log()


def _two_partitions(
    bootstrap: str, directory: Path, receiver: Receiver, extra: dict[str, Any] | None = None
) -> Deployment:
    """A deployment of two input partitions and one hook, for the stop tests above."""
    return Deployment(
        bootstrap,
        directory,
        [hook("crm", f"{receiver.url}/crm", ["order.*"])],
        partitions=2,
        extra=extra or {},
    )


def run_until_it_stops(deployment: Deployment, timeout: float) -> BaseException | None:
    """Run a worker of `deployment` in a thread until it stops by itself; what it raised.
    One still running after `timeout` seconds is stopped, and the test fails."""
    worker, thread, raised = deployment.started()
    thread.join(timeout)
    if thread.is_alive():
        worker.request_stop()
        thread.join(60)
        pytest.fail(f"the worker did not stop by itself within {timeout:g}s")
    return raised[0] if raised else None


@pytest.mark.timeout(300)
def test_a_producer_failed_for_good_stops_the_worker_and_the_next_one_delivers_the_rest(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A librdkafka fatal error, for real: with `enable.gapless.guarantee`, a batch the broker
    refuses for good (a dead letter past its topic's `max.message.bytes`) fails the
    idempotent producer for good. confluent-kafka raises it from `poll()`: it ended the
    consumer thread with a traceback, and the worker stopped saying "stopped" (exit 0). It
    stops saying why, commits nothing the producer did not acknowledge, and exits 3; the
    next worker delivers the same events."""
    with Receiver({"/reject": Behaviour(status=400)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/reject", ["order.*"])],
            extra={"drain_timeout": "5s"},
        )
        create_topic(kafka_bootstrap, deployment.dead_letter, config={"max.message.bytes": "20000"})
        noise = base64.b64encode(os.urandom(45_000)).decode()  # 60 KB that no codec shrinks much
        big = cloud_event("order.paid", {"blob": noise}, event_id="big")
        small = cloud_event("order.paid", {"n": 1}, event_id="small")
        deployment.produce_events([big, small])

        def gapless(settings: Any, **extra: Any) -> dict[str, Any]:
            return {**producer_config(settings, **extra), "enable.gapless.guarantee": True}

        with monkeypatch.context() as patched, caplog.at_level(logging.INFO):
            patched.setattr(assembly, "producer_config", gapless)
            raised = run_until_it_stops(deployment, 120)

        assert isinstance(raised, KafkaUnavailable)  # `dispatcher run` exits 3 with it
        assert str(raised).startswith("the Kafka client failed for good: ProduceRequest for")
        assert "gap-less" in str(raised)
        assert "\n" not in str(raised)  # one line
        said = [r.getMessage() for r in caplog.records if r.name.startswith("dispatcher.engine")]
        assert len([line for line in said if "fatal producer error" in line]) == 1
        assert f"revoking {deployment.events}[0]" in said  # it left its group as it stopped
        assert deployment.committed() == 0  # the big event's pair was never acknowledged

        with deployment.worker():
            letters = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda r: len(r) >= 2, 60
            )
            wait_for(lambda: deployment.committed() == 2, 30, message="both offsets committed")

    by_offset = {int(r.header("dispatcher.source.offset") or b"-1"): r for r in letters}
    assert set(by_offset) == {0, 1}
    assert (by_offset[0].header(VALUE_OMITTED) or b"").startswith(b"too large for Kafka")


@pytest.mark.timeout(300)
def test_a_hook_health_producer_failed_for_good_stops_the_worker(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The producer of hook health failed for good, for real: with `enable.gapless.guarantee`,
    a report the broker refuses for good (a health topic whose `max.message.bytes` no report
    fits) fails it. confluent-kafka raised the error from the round's `poll()`: logged as a
    failed round, and the worker ran on without hook health (no hook could pause any more),
    to say "stopped" (exit 0) only when it was stopped. It stops saying why, and exits 3."""
    with Receiver({"/down": Behaviour(status=503)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/down", ["order.*"], retry={"max_attempts": 1})],
            extra={
                "kafka": {"enable.idempotence": True, "enable.gapless.guarantee": True},
                "hook_health_interval": "1s",
                "drain_timeout": "5s",
            },
        )
        no_report_fits = {"cleanup.policy": "compact", "max.message.bytes": "100"}
        create_topic(kafka_bootstrap, deployment.health, config=no_report_fits)
        deployment.produce_events([cloud_event("order.paid", {"n": 1})])

        with caplog.at_level(logging.INFO):
            raised = run_until_it_stops(deployment, 60)

    assert isinstance(raised, KafkaUnavailable)  # `dispatcher run` exits 3 with it
    assert str(raised).startswith(
        f"the Kafka client failed for good: ProduceRequest for {deployment.health} [0]"
    )
    assert "gap-less" in str(raised)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("dispatcher.engine")]
    (fatal,) = [line for line in said if "fatal producer error" in line]
    assert fatal.startswith("fatal producer error, stopping (hook health: ")
    assert "hook health: a round failed" not in said  # no traceback
