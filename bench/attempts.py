"""The attempts topic's cost per attempt on the delivery loop: `python -m bench.attempts [--n N]`.

Times, in process CPU seconds on one core, what a worker's observer does for each attempt of
scenario 1's hook (JSON mapping + HMAC, so its secret is masked in every excerpt) answered with
nginx's body: queue it, then make the record (excerpt, mask, JSON) and hand it to a real
`confluent_kafka.Producer`. The producer has no broker (its bootstrap is a closed loopback
port), so librdkafka's own threads (batching, compressing, sending: seen in s1) are not in it:
this is the Python side, which `make bench`'s s1 pair (attempts on and off) measures whole.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from confluent_kafka import Producer

from bench.receiver import BODY
from bench.workload import hook
from dispatcher.config.settings import Settings
from dispatcher.engine.attempts import AttemptRecorder
from dispatcher.http.sender import Attempt
from dispatcher.kafka.attempts import MAX_PENDING, AttemptWriter
from dispatcher.kafka.clients import producer_config
from dispatcher.metrics import ATTEMPT_DROPS, Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import judge


def json_body(size: int) -> bytes:
    """A JSON object of `size` bytes (at least nginx's), as a third party's answer may be."""
    if size <= len(BODY):
        return BODY.encode()
    filler = size - len(BODY) - len(',"detail":""')
    return (BODY[:-1] + ',"detail":"' + "delivered to the customer; " * (filler // 27 + 1))[
        : size - 2
    ].encode() + b'"}'


def measure(count: int, body: bytes = BODY.encode()) -> float:
    """CPU µs per attempt, observer and record together, each answered with `body`."""
    the_hook = Hook.from_dict(hook("a", "http://127.0.0.1:9/fast"))
    settings = Settings(kafka={"bootstrap.servers": "127.0.0.1:9"})
    producer = Producer(producer_config(settings, **{"log_level": 0}))
    pairs = []
    for i in range(count):
        event = Event(id=f"ev-{i}", type="order.shipped", source="/bench", data={})
        record = Record("bench", i % 12, i, None, b"{}", ())
        source = Source("bench", i % 12, i)
        pairs.append(Pair(record, event, the_hook, source, idempotency_key(event, "a")))
    attempt = Attempt(judge(the_hook.response, 200, {}, body), 0.0012)

    metrics = Metrics()

    async def run() -> float:
        recorder = AttemptRecorder(
            AttemptWriter(producer, "attempts", metrics), loop=asyncio.get_running_loop()
        )
        started = time.process_time()
        for start in range(0, count, 200):  # 200 attempts per turn of the loop, as in s1
            for pair in pairs[start : start + 200]:
                recorder(pair, 1, attempt)
            await asyncio.sleep(0)
        return time.process_time() - started

    seconds = asyncio.run(run())
    producer.purge()
    dropped = sum(
        metrics.registry.get_sample_value(
            "dispatcher_attempt_records_dropped_total", {"reason": reason}
        )
        or 0.0
        for reason in ATTEMPT_DROPS
    )
    if dropped:  # a dropped record costs less than a written one: the figure would flatter
        raise SystemExit(f"{dropped:g} records dropped: run with a smaller --n")
    return 1e6 * seconds / count


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attempts", description=__doc__)
    parser.add_argument(
        "--n", type=int, default=40_000, help=f"attempts per run (at most {MAX_PENDING:,})"
    )
    parser.add_argument(
        "--body-bytes",
        type=int,
        default=0,
        help="answer with a JSON body of this size (default: nginx's, 28 bytes)",
    )
    args = parser.parse_args()
    body = json_body(args.body_bytes)
    runs = [measure(args.n, body) for _ in range(3)]
    print(
        f"attempt records: {min(runs):.1f} µs CPU per attempt (min of 3 runs of {args.n:,};"
        f" a {len(body):,}-byte body)"
    )


if __name__ == "__main__":
    main()
