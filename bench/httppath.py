"""The delivery loop's HTTP path alone: CPU per delivery of render, sign, send, read, judge.

`python -m bench.httppath [--count N] [--concurrency C] [--repeat R] [--answer A]` starts nginx
on loopback (the benchmark's receiver, in its own process, so its CPU is not counted) and runs N
pairs of the s1 hook through the worker's `Deliverer` and hook client, C at a time, on the event
loop the worker uses. It prints the CPU microseconds per delivery of this process, min and
median of R runs, with the load average: the figure to watch while changing the HTTP path.

`--answer fast` (the default) is scenario 1's: nginx's 28 bytes and five headers, the hook
checking the status only. `--answer realistic` is a payment provider's: a kilobyte of JSON with
a link, nineteen headers, and the hook checking the body (`expect`) and capturing two values
from it, as the hooks in deploy/examples do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bench.receiver import Nginx
from bench.workload import REALISTIC_CHECKS, event, hook
from dispatcher.config.settings import Settings
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.loop import new_event_loop, task_context
from dispatcher.http.pool import ClientPool
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source, idempotency_key
from dispatcher.model.pair import Pair


def pairs(hook_: Hook, count: int) -> list[Pair]:
    out = []
    for index in range(count):
        ev = Event.from_dict(event("micro", index))
        record = Record("bench", 0, index, None, b"{}", ())
        out.append(Pair(record, ev, hook_, Source("bench", 0, index), idempotency_key(ev, "a")))
    return out


ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "fast": ("/fast", {}),
    "realistic": ("/realistic", REALISTIC_CHECKS),
}


async def deliver_all(url: str, count: int, concurrency: int, answer: str = "fast") -> float:
    """CPU seconds of this process for `count` deliveries (after a warm-up)."""
    path, checks = ANSWERS[answer]
    hook_ = Hook.from_dict(hook("a", url + path, concurrency=concurrency, timeout="5s", **checks))
    pool = ClientPool(Settings(allow_loopback=True))  # nginx is on loopback
    deliverer = Deliverer(Metrics(), (600.0,), 2)
    client = pool.client_for(hook_)
    queue = pairs(hook_, count)
    warm = pairs(hook_, min(count, 500))

    async def run(batch: list[Pair]) -> None:
        results = await asyncio.gather(*(deliverer.deliver(p, client) for p in batch))
        failed = [r for r in results if not (isinstance(r, Outcome) and r.outcome == "delivered")]
        if failed:
            raise RuntimeError(f"{len(failed)} deliveries failed, e.g. {failed[0]}")

    await run(warm)
    started = time.process_time()
    await run(queue)
    cpu = time.process_time() - started
    await pool.aclose()
    return cpu


def per_delivery(
    run: Callable[[], Coroutine[Any, Any, float]],
    repeat: int,
    count: int,
    before: Callable[[], None] = lambda: None,
) -> list[float]:
    """CPU µs a delivery of `repeat` runs of `count` deliveries (`run()` returns its CPU
    seconds), each on a new event loop of the worker's kind, in the worker's context, after
    `before()`."""
    figures = []
    for _ in range(repeat):
        loop = new_event_loop()
        before()
        try:
            cpu = loop.run_until_complete(loop.create_task(run(), context=task_context()))
        finally:
            loop.close()
        figures.append(1e6 * cpu / count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.httppath", description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--answer", choices=sorted(ANSWERS), default="fast")
    args = parser.parse_args()
    with Nginx() as nginx:
        url = nginx.url("")
        figures = per_delivery(
            lambda: deliver_all(url, args.count, args.concurrency, args.answer),
            args.repeat,
            args.count,
        )
    print(
        f"HTTP path: {min(figures):.0f} us/delivery min, {statistics.median(figures):.0f} median"
        f" of {args.repeat} x {args.count} at concurrency {args.concurrency}, {args.answer}"
        " answers;"
        f" load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
