"""The broker warmed before anything is measured, as a production broker is.

A fresh broker's JVM compiles its hot paths with the optimizing tier (C2) for a minute or more
of load: in the first minute of a run its compiler threads took 0.3-0.6 of a core, on the two
cores the contender shares with it, and the broker's CPU per delivery measured 130-170 µs
instead of the 20-55 µs it settles at. So before the first scenario the bench drives the broker
through the paths the contenders use (batched lz4 idempotent produce, group fetches, periodic
and synchronous commits, single-record produce, a results reader) until its compiler is quiet.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.kafka import create_topics
from bench.procs import thread_cpu_seconds
from bench.workload import event

TOPIC, RESULTS = "bench-warmup", "bench-warmup-results"
PARTITIONS, RESULT_PARTITIONS = 12, 6
ROUND = 4000  # events per round: batched like a backlog
ONE_BY_ONE = 100  # of them, also consumed with a synchronous commit each (the naive loop's way)
WINDOW = 3.0  # seconds over which the compiler's CPU is judged
QUIET = 0.05  # of a core: the compiler counts as quiet below this
TIMEOUT = 180.0


def compiler_seconds(pid: int) -> float:
    """CPU seconds of the JVM's JIT compiler threads (`C1 CompilerThre`, `C2 CompilerThre`)."""
    return sum(seconds for name, seconds in thread_cpu_seconds(pid) if "CompilerThre" in name)


def warm_broker(bootstrap: str, broker_pid: int) -> dict[str, Any]:
    """Rounds of load until the broker's JIT compiler used under `QUIET` of a core over the
    last `WINDOW` seconds, or `TIMEOUT`; what it took (for the results file)."""
    create_topics(bootstrap, {TOPIC: PARTITIONS, RESULTS: RESULT_PARTITIONS})
    common: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    events = Producer({**common, "acks": "all", "linger.ms": 1, "batch.size": 262144})
    outcomes = Producer(
        {**common, "linger.ms": 20, "compression.type": "lz4", "enable.idempotence": True}
    )
    single = Producer({**common, "linger.ms": 5})
    batched = Consumer(
        {
            **common,
            "group.id": "bench-warmup",
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": 250,
            "auto.offset.reset": "earliest",
        }
    )
    synchronous = Consumer(
        {
            **common,
            "group.id": "bench-warmup-one-by-one",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    reader = Consumer({**common, "group.id": "bench-warmup-reader", "enable.auto.commit": False})
    batched.subscribe([TOPIC])
    synchronous.subscribe([TOPIC])
    reader.assign([TopicPartition(RESULTS, p, OFFSET_BEGINNING) for p in range(RESULT_PARTITIONS)])
    started = time.monotonic()
    marks = [(started, compiler_seconds(broker_pid))]  # (when, the compiler's CPU seconds)
    rounds, rate = 0, None  # rate: the compiler's cores over the last WINDOW seconds or more
    try:
        while (rate is None or rate >= QUIET) and time.monotonic() - started < TIMEOUT:
            _round(rounds, events, outcomes, single, batched, synchronous, reader)
            rounds += 1
            marks.append((time.monotonic(), compiler_seconds(broker_pid)))
            while len(marks) > 2 and marks[-1][0] - marks[1][0] >= WINDOW:
                marks.pop(0)  # the oldest mark kept is the newest at least WINDOW old
            (then, cpu0), (now, cpu1) = marks[0], marks[-1]
            rate = (cpu1 - cpu0) / (now - then) if now - then >= WINDOW else None
    finally:
        for consumer in (batched, synchronous, reader):
            consumer.close()
        for producer in (events, outcomes, single):
            producer.flush(10)
    # its hundreds of thousands of records would only take the scenarios' page cache
    admin = AdminClient(common)  # held: a dropped client cancels what it was asked
    for future in admin.delete_topics([TOPIC, RESULTS]).values():
        future.result(30)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "rounds": rounds,
        "events": rounds * ROUND,
        "compiler_cores_at_end": None if rate is None else round(rate, 3),
        "quiet": rate is not None and rate < QUIET,
    }


def _round(
    number: int,
    events: Producer,
    outcomes: Producer,
    single: Producer,
    batched: Consumer,
    synchronous: Consumer,
    reader: Consumer,
) -> None:
    """One backlog of `ROUND` events: consumed in batches with an outcome each and periodic
    commits, partly one by one with a synchronous commit each, and the outcomes read back."""
    for index in range(ROUND):
        body = json.dumps(event(f"warmup{number}", index), separators=(",", ":"))
        while True:
            try:
                events.produce(TOPIC, body, partition=index % PARTITIONS)
                break
            except BufferError:
                events.poll(0.01)
    events.flush(30)
    taken, deadline = 0, time.monotonic() + 60
    while taken < ROUND:
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker warm-up: {taken} of {ROUND} events consumed in 60 s")
        for message in batched.consume(500, 1.0):
            if message.error() is None:
                outcomes.produce(RESULTS, message.value(), key=message.key())
                batched.store_offsets(message)
                taken += 1
        outcomes.poll(0)
    outcomes.flush(30)
    for _ in range(ONE_BY_ONE):
        one = synchronous.poll(1.0)
        if one is not None and one.error() is None:
            single.produce(RESULTS, one.value())
            single.poll(0)
            synchronous.commit(message=one, asynchronous=False)
    single.flush(30)
    read = 0
    while read < ROUND:
        found = reader.consume(2000, 1.0)
        if not found:
            break
        read += len(found)
