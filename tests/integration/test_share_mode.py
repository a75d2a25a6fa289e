"""Queue mode on a real share group: more workers than partitions, nothing lost (contract 11)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from dispatch_support import (
    FAILOVER,
    Deployment,
    cloud_event,
    collect_until,
    free_port,
    headers_of,
    hook,
    stop,
)
from kafka_support import wait_for

from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.sharegroup import set_group_config

SHARE: dict[str, Any] = {"consume": "share", "drain_timeout": "4s"}
SHARE_RECORDS = "dispatcher_share_records_total"
# records spread over the workers; a killed worker's retry and operations groups move in 3 s
# (a share consumer is not given the group properties: it would refuse them)
SMALL_POLLS = {**SHARE, "kafka": {"max.poll.records": 4, **FAILOVER["kafka"]}}


def metric(port: int, name: str, **labels: str) -> float:
    """A sample of a worker's /metrics (0 when absent)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    )
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def event_ids(records: list[Any]) -> set[str]:
    return {r.json()["event_id"] for r in records}


def takes_a_batch(port: int) -> None:
    """Waits until the worker on `port` acquires a new batch: it then holds records for a
    request's delay (a signal sent now finds them in flight)."""
    before = metric(port, SHARE_RECORDS, result="acquired")
    wait_for(
        lambda: metric(port, SHARE_RECORDS, result="acquired") > before,
        60,
        message=f"the worker on port {port} acquiring records",
    )


def test_three_workers_share_one_partition_and_a_kill_and_a_stop_lose_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Requests outlast the drain, so the stopped worker has records to release; once it has,
    # the survivor's are answered at once (what is left proves nothing more for being slow).
    slow = threading.Event()
    slow.set()
    with Receiver() as receiver:
        receiver.responder = lambda _request: Behaviour(delay=3.0) if slow.is_set() else None
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/slow", ["customer.created"], concurrency=20)],
            partitions=1,
            extra={**SMALL_POLLS, "drain_timeout": "1s"},
        )
        ports = [free_port() for _ in range(3)]
        workers = [deployment.process(env={"DISPATCHER_HTTP_PORT": str(p)}) for p in ports]
        wait_for(lambda: deployment.workers_started() == 3, 60, message="three workers up")
        events = [cloud_event("customer.created", {"i": i}) for i in range(48)]
        for start in range(0, len(events), 4):  # a producer batch goes to one member
            deployment.produce_events(events[start : start + 4])
        wait_for(
            lambda: all(metric(p, SHARE_RECORDS, result="accepted") >= 4 for p in ports),
            90,
            message="every worker accepted records of the one partition",
        )
        killed, stopped, survivor = workers
        takes_a_batch(ports[0])
        killed.send_signal(signal.SIGKILL)  # with records acquired and in flight
        killed.wait(timeout=30)
        takes_a_batch(ports[1])
        began = time.monotonic()
        assert stop(stopped, signal.SIGTERM, timeout=30) == 0
        assert time.monotonic() - began < 1 + 10  # its drain_timeout, and closing
        assert re.search(r"released \d+ records for other workers", deployment.log())
        slow.clear()
        expected = {e["id"] for e in events}
        results = collect_until(
            kafka_bootstrap, deployment.results, lambda rs: event_ids(rs) >= expected, 120
        )
        assert expected - event_ids(results) == set()  # lost = 0
        assert {r.json()["outcome"] for r in results} == {"delivered"}
        webhook_ids: dict[bytes, set[str]] = {}
        for request in receiver.received("/slow"):
            webhook_ids.setdefault(request.body, set()).add(request.headers["webhook-id"])
        assert len(webhook_ids) == len(events)
        assert all(len(ids) == 1 for ids in webhook_ids.values())  # duplicates keep webhook-id
        assert stop(survivor) == 0


def test_an_ordering_key_hook_is_refused_at_start_in_share_mode(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    deployment = Deployment(
        kafka_bootstrap,
        tmp_path,
        [
            hook("ledger", "http://127.0.0.1:9/a", ["order.paid"], ordering="key"),
            hook("sms", "http://127.0.0.1:9/b", ["order.paid"]),
        ],
        extra=SHARE,
    )
    process = deployment.process()
    assert process.wait(timeout=60) == 1
    refusal = [line for line in deployment.log().splitlines() if "ordering" in line]
    assert len(refusal) == 1
    assert "ledger" in refusal[0]
    assert "sms" not in refusal[0]


def test_a_record_that_keeps_coming_back_is_dead_lettered_as_redelivered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/hang": Behaviour(hang=True)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/hang", ["order.paid"], timeout="25s")],
            # the killed worker was a member of the retry tiers' and operations' groups, and
            # their rebalance waits for it (45 s: a share worker cannot shorten its session):
            # the second leaves them at the end of its drain, which has nothing to wait for
            extra={**SHARE, "drain_timeout": "1s"},
        )
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        set_group_config(admin, deployment.group, {"share.delivery.count.limit": "2"})
        event = cloud_event("order.paid", {"order": 7})
        deployment.produce_events([event])
        first = deployment.process()  # takes the record (delivery 1) and hangs on it
        wait_for(lambda: len(receiver.received("/hang")) == 1, 60, message="the first attempt")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = deployment.process()  # gets it back on its last delivery (2 of 2)
        dead = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 1, 60)
        results = collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 30)
        assert stop(second) == 0
        headers = headers_of(dead[0])
        assert headers["dispatcher.error.kind"] == b"redelivered"
        assert headers["dispatcher.hook.id"] == b"erp"
        assert dead[0].value == json.dumps(event).encode()  # the original, unchanged
        assert [(r.json()["outcome"], r.json()["error_kind"]) for r in results] == [
            ("dead_lettered", "redelivered")
        ]
        assert len(receiver.received("/hang")) == 1  # no request on the last delivery


def test_a_delivery_that_would_outlast_the_records_lock_goes_to_a_retry_tier(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    answers = iter([Behaviour(delay=3.0)])  # the first request outlasts the lock, the tier's not

    with Receiver() as receiver:
        receiver.responder = lambda _request: next(answers, None)
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/slow", ["order.paid"], timeout="10s")],
            extra=SHARE,
        )
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        set_group_config(admin, deployment.group, {"share.record.lock.duration.ms": "2000"})
        deployment.produce_events([cloud_event("order.paid", {"order": 8})])
        with deployment.worker() as worker:
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60
            )
            shares = worker.metrics.share_records
            wait_for(lambda: shares.labels("accepted")._value.get() == 1, 10, message="accepted")
            assert shares.labels("expired")._value.get() == 0
            assert worker.metrics.retries_scheduled.labels("erp", "1s")._value.get() == 1
        assert [r.json()["outcome"] for r in results] == ["delivered"]
        requests = receiver.received("/slow")
        assert len(requests) == 2  # cut at the lock, then from the tier; not again by the broker
        assert len({r.headers["webhook-id"] for r in requests}) == 1


def test_a_pair_cut_at_the_lock_after_an_attempt_counts_on_from_it_in_the_tier(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A 503, then an attempt still out when the record's lock ends: the pair goes to a tier
    with its one answered attempt counted, and the tier's success is attempt 2 (not a second
    attempt 1), in its result and on the attempts topic, where the attempt cut at the lock has
    its record too, of kind `cut`, under the number the tier's attempt takes again."""
    answers = iter([Behaviour(status=503), Behaviour(delay=3.0)])

    with Receiver() as receiver:
        receiver.responder = lambda _request: next(answers, None)
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.paid"], timeout="10s")],
            extra=SHARE,
        )
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        set_group_config(admin, deployment.group, {"share.record.lock.duration.ms": "2000"})
        deployment.produce_events([cloud_event("order.paid", {"order": 9})])
        with deployment.worker():
            (result,) = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60
            )
            attempts = collect_until(
                kafka_bootstrap, deployment.attempts, lambda rs: len(rs) >= 3, 30
            )
        assert len(receiver.received("/erp")) == 3  # the 503, the one cut, the tier's
        assert (result.json()["outcome"], result.json()["attempts"]) == ("delivered", 2)
        numbered = [
            (a.json()["attempt"], a.json()["http_status"], a.json()["error_kind"]) for a in attempts
        ]
        assert numbered == [(1, 503, "http_status"), (2, None, "cut"), (2, 200, None)]


def readyz(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5, trust_env=False).status_code
    except httpx.TransportError:
        return 0


@pytest.mark.timeout(420)
def test_readyz_is_503_while_kafka_is_gone_and_200_once_it_is_back(
    kafka_bootstrap: str, local_kafka: LocalKafka, tmp_path: Path
) -> None:
    """A share consumer keeps its assignment without Kafka: readiness follows its group's
    state, so probes and DispatcherNoReadyWorkers see a worker that cannot consume."""
    crm = hook("crm", "https://crm.example.com/", ["order.*"])
    faster = {**SHARE, "kafka": {"statistics.interval.ms": 1000}}  # readiness, every second
    deployment = Deployment(kafka_bootstrap, tmp_path, [crm], extra=faster)
    port = free_port()
    worker = deployment.process(env={"DISPATCHER_HTTP_PORT": str(port)})
    try:
        wait_for(lambda: readyz(port) == 200, 60, message="ready: a member with partitions")
        assert metric(port, "dispatcher_ready") == 1
        local_kafka.stop()
        try:
            wait_for(lambda: readyz(port) == 503, 120, message="unready while Kafka is gone")
            assert metric(port, "dispatcher_ready") == 0
        finally:
            assert local_kafka.start() == kafka_bootstrap
        wait_for(lambda: readyz(port) == 200, 120, message="ready again once Kafka is back")
        assert metric(port, "dispatcher_ready") == 1
    finally:
        assert stop(worker) == 0


def test_a_switch_to_share_mode_is_refused_while_the_consumer_group_holds_the_id(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/ok": Behaviour()}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/ok", ["customer.created"])],
            extra={"drain_timeout": "4s"},
        )
        before = cloud_event("customer.created", {"i": 1})
        deployment.produce_events([before])
        with deployment.worker():  # consume: group, under group_id
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60)
        deployment.extra = SHARE
        deployment.write()
        refused = deployment.process()
        assert refused.wait(timeout=60) == 1  # a configuration error, not a failed client
        refusal = [line for line in deployment.log().splitlines() if "is a consumer group" in line]
        assert len(refusal) == 1
        assert f"kafka-consumer-groups.sh --delete --group {deployment.group}" in refusal[0]
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        admin.delete_consumer_groups([deployment.group])[deployment.group].result(timeout=30)
        after = cloud_event("customer.created", {"i": 2})
        deployment.produce_events([after])
        with deployment.worker():  # the share group, at the earliest record
            # the two pairs are delivered at once: either outcome may be written first
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 3, 60
            )
        ids = sorted(r.json()["event_id"] for r in results)
        assert ids == sorted([before["id"], before["id"], after["id"]])  # before, again
        webhook_ids: dict[bytes, set[str]] = {}
        for request in receiver.received("/ok"):
            webhook_ids.setdefault(request.body, set()).add(request.headers["webhook-id"])
        assert sorted(len(ids) for ids in webhook_ids.values()) == [1, 1]  # the same, again


def test_a_switch_back_to_group_mode_stops_while_the_share_group_holds_the_id(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/ok": Behaviour()}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/ok", ["customer.created"])],
            extra=SHARE,
        )
        deployment.produce_events([cloud_event("customer.created", {"i": 1})])
        with deployment.worker():  # consume: share, under group_id
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60)
        deployment.extra = {"drain_timeout": "4s"}
        deployment.write()
        refused = deployment.process()
        assert refused.wait(timeout=60) == 3  # it stops, rather than join in vain for ever
        said = [line for line in deployment.log().splitlines() if "is not a consumer group" in line]
        assert said
        assert f"kafka-share-groups.sh --delete --group {deployment.group}" in said[-1]


def test_a_frozen_workers_acknowledgement_past_the_lock_counts_as_expired(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/slow": Behaviour(delay=1.0)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/slow", ["order.paid"])],
            extra=SHARE,
        )
        (frozen, frozen_port), (other, _) = frozen_past_the_lock(
            kafka_bootstrap,
            deployment,
            [cloud_event("order.paid", {"order": 9})],
            lambda: len(receiver.received("/slow")) == 1,
        )
        wait_for(
            lambda: sum(
                metric(frozen_port, SHARE_RECORDS, result=r) for r in ("accepted", "expired")
            ),
            60,
            message="the frozen worker's late acknowledgement",
        )
        assert metric(frozen_port, SHARE_RECORDS, result="expired") == 1
        assert metric(frozen_port, SHARE_RECORDS, result="accepted") == 0
        assert stop(frozen) == 0
        assert stop(other) == 0
        assert len({r.headers["webhook-id"] for r in receiver.received("/slow")}) == 1


def test_a_worker_frozen_past_its_records_lock_sends_none_of_them_again_when_it_wakes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGSTOP with one request out and three pairs waiting for the hook's one slot; their lock
    runs out and a second worker takes the four records and delivers them. On SIGCONT the
    first makes no request for the three and writes no outcome for them (a hand-off to a
    retry tier would send them again): each reaches the receiver once."""
    answers = iter([Behaviour(delay=1.0)])  # the first request is out as the worker stops

    with Receiver() as receiver:
        receiver.responder = lambda _request: next(answers, None)
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.paid"], concurrency=1)],
            extra={**SHARE, "kafka": FAILOVER["kafka"]},
        )
        (frozen, frozen_port), (other, _) = frozen_past_the_lock(
            kafka_bootstrap,
            deployment,
            # one producer batch: one poll takes all four
            [cloud_event("order.paid", {"order": i}) for i in range(4)],
            lambda: len(receiver.received("/erp")) == 1,
        )
        wait_for(
            lambda: (
                sum(
                    metric(frozen_port, SHARE_RECORDS, result=r)
                    for r in ("accepted", "expired", "released")
                )
                == 4
            ),
            60,
            message="the frozen worker ending its batch",
        )
        assert metric(frozen_port, SHARE_RECORDS, result="expired") == 4
        assert stop(frozen) == 0  # (a hand-off it made would be written by now)
        assert stop(other) == 0
        first = receiver.received("/erp")[0].headers["webhook-id"]
        sent: dict[str, int] = {}
        for request in receiver.received("/erp"):
            sent[request.headers["webhook-id"]] = sent.get(request.headers["webhook-id"], 0) + 1
        assert sent.pop(first) == 2  # the frozen worker's request, out before it froze; the other's
        assert sorted(sent.values()) == [1, 1, 1]
        assert deployment.written(deployment.settings.topics.retry_topic(0)) == 0


def frozen_past_the_lock(
    kafka_bootstrap: str,
    deployment: Deployment,
    events: list[dict[str, Any]],
    first_request: Callable[[], bool],
) -> tuple[tuple[subprocess.Popen[bytes], int], tuple[subprocess.Popen[bytes], int]]:
    """Two share workers on a group with a 2 s lock: the first takes `events` and is stopped
    (SIGSTOP) once `first_request()` holds; the second takes every record at its lock's end
    and accepts them; then the first goes on (SIGCONT). Each worker and its metrics port."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    set_group_config(admin, deployment.group, {"share.record.lock.duration.ms": "2000"})
    frozen_port, other_port = free_port(), free_port()
    frozen = deployment.process(env={"DISPATCHER_HTTP_PORT": str(frozen_port)})
    wait_for(lambda: deployment.workers_started() == 1, 60, message="the first worker up")
    deployment.produce_events(events)
    wait_for(first_request, 60, message="its first request")
    frozen.send_signal(signal.SIGSTOP)  # holding the records, their lock running out
    other = deployment.process(env={"DISPATCHER_HTTP_PORT": str(other_port)})
    wait_for(lambda: deployment.workers_started() == 2, 60, message="the other worker up")
    wait_for(
        lambda: metric(other_port, SHARE_RECORDS, result="accepted") == len(events),
        60,
        message="the other worker taking the records at their lock's end, and accepting them",
    )
    frozen.send_signal(signal.SIGCONT)
    return (frozen, frozen_port), (other, other_port)
