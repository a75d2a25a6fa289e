"""`cpu_affinity: auto` with two workers: each worker's Python threads on a CPU of their own,
librdkafka's threads left free, and events delivered as ever."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook, stop
from kafka_support import wait_for

from dispatcher.devtools.receiver import Receiver

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs sched_setaffinity and two CPUs",
)


def threads_of(pid: int) -> list[tuple[str, set[int]]]:
    """(name, CPUs it may run on) of each thread of process `pid`; its main thread first.

    A thread that ends between the listing and the reads (a resolver's, a client's short-lived
    one) is left out: it is no longer there to be pinned or not."""
    out = []
    tids = sorted(os.listdir(f"/proc/{pid}/task"), key=lambda tid: tid != str(pid))
    for tid in tids:
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            out.append((name, os.sched_getaffinity(int(tid))))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def workers_of(pid: int) -> list[int]:
    """The worker processes `dispatcher run --workers N` started (not multiprocessing's own)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_two_workers_each_on_a_cpu_of_their_own(kafka_bootstrap: str, tmp_path: Path) -> None:
    allowed = os.sched_getaffinity(0)
    first, second = sorted(allowed)[:2]
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["customer.created"])],
            partitions=2,
            extra={"cpu_affinity": "auto"},
        )
        process = deployment.process("--workers", "2")
        wait_for(lambda: deployment.workers_started() == 2, 60, message="two workers up")
        events = [cloud_event("customer.created", {"i": i}) for i in range(20)]
        deployment.produce_events(events)
        results = collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 20, 60)
        workers = [threads_of(child) for child in workers_of(process.pid)]
        assert stop(process) == 0

    assert sorted(min(worker[0][1]) for worker in workers) == [first, second]
    for worker in workers:
        (cpu,) = worker[0][1]  # the delivery loop's thread: one CPU
        python = [cpus for name, cpus in worker if not name.startswith("rdk:")]
        kafka = [cpus for name, cpus in worker if name.startswith("rdk:")]
        assert kafka
        assert all(cpus == allowed for cpus in kafka)  # made before the pin: left free
        assert python.count({cpu}) >= 1 + 3  # the loop and its three consumer threads
    assert {r.json()["outcome"] for r in results} == {"delivered"}
