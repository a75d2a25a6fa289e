"""The delivery loop's side of a delivery: `bench.httppath` plus what the worker adds around it.

`python -m bench.looppath [--count N] [--repeat R] [--no-attempts]` starts nginx on loopback (in
its own process) and runs N pairs of scenario 1's hook through the worker's `Scheduler` (a task
per pair, offers, slots), `Deliverer`, hook client, `OutcomeWriter` and attempt records, on the
worker's event loop. The records go to a producer whose broker is never reached (a loopback port
nothing listens on): produced and queued, never acknowledged, so no consumer thread takes part.
It prints this thread's CPU microseconds per delivery, min and median of R runs.

Times on a shared machine drift by more than a small change saves. Instructions do not: run it
under callgrind at two counts, and the difference over the difference in pairs is the
instructions a delivery, the same to 0.1% from run to run. They count the whole process, so
they include making each pair (its event from a dict, as decoding ends, its idempotency key)
besides the loop's work:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.looppath --count 1000 --repeat 1   # then --count 3000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from confluent_kafka import Producer

from bench.httppath import pairs, per_delivery
from bench.receiver import Nginx, free_port
from bench.workload import hook
from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.attempts import AttemptRecorder
from dispatcher.engine.collector import tune
from dispatcher.engine.deliver import AttemptObserver, Deliverer
from dispatcher.engine.scheduler import Scheduler
from dispatcher.http.pool import ClientPool
from dispatcher.kafka.attempts import AttemptWriter
from dispatcher.kafka.results import JsonResultSerializer
from dispatcher.kafka.writer import OutcomeWriter
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.model.pair import Pair

BATCH = 500  # pairs a `Scheduler.start`, as the consumer thread hands them over at load


class Sink:
    """The consumer loop's part in a pair's end: its writer, and a completion that never runs
    (no acknowledgement comes from a broker that is never reached)."""

    def __init__(self, writer: OutcomeWriter) -> None:
        self.writer = writer

    def finish(self, _pair: Pair) -> Callable[[], None]:
        return _never


def _never() -> None:
    """A completion the producer keeps and never calls (its records are never acknowledged)."""


async def deliver_all(url: str, count: int, attempts: bool) -> float:
    """This thread's CPU seconds for `count` deliveries (after a warm-up of 500)."""
    hook_ = Hook.from_dict(hook("a", url + "/fast", concurrency=200, timeout="5s"))
    pool = ClientPool(Settings(allow_loopback=True))  # nginx is on loopback
    metrics = Metrics()
    unreached = f"127.0.0.1:{free_port()}"
    producer = Producer(
        {
            "bootstrap.servers": unreached,
            "linger.ms": 20,
            "queue.buffering.max.messages": 10**6,
            "log_level": 0,  # its refused connections are the point, not news
        }
    )
    loop = asyncio.get_running_loop()
    observers: list[AttemptObserver] = []
    if attempts:
        observers.append(AttemptRecorder(AttemptWriter(producer, "attempts", metrics), loop))
    scheduler = Scheduler(Deliverer(metrics, (600.0,), 2, observers=observers), pool.client_for)
    sink = Sink(OutcomeWriter(producer, Topics(), metrics, JsonResultSerializer()))

    async def run(batch: list[Pair]) -> None:
        for start in range(0, len(batch), BATCH):
            scheduler.start(batch[start : start + BATCH], sink)
        while scheduler.tasks or scheduler.offers:
            await asyncio.wait(set(scheduler.tasks))

    await run(pairs(hook_, 500))
    queue = pairs(hook_, count)
    started = time.thread_time()
    await run(queue)
    cpu = time.thread_time() - started
    await pool.aclose()
    producer.purge()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.looppath", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-attempts", action="store_true", help="no attempt records")
    args = parser.parse_args()
    with Nginx() as nginx:
        url = nginx.url("")
        figures = per_delivery(
            lambda: deliver_all(url, args.count, not args.no_attempts),
            args.repeat,
            args.count,
            before=tune,  # the worker's collector policy
        )
    print(
        f"loop path: {min(figures):.1f} us/delivery min, {statistics.median(figures):.1f} median"
        f" of {args.repeat} x {args.count}" + (", no attempt records" if args.no_attempts else "")
    )


if __name__ == "__main__":
    main()
