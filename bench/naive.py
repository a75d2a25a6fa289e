"""The loop a team writes first: consume one record, POST it, write the result, commit, repeat.

A synchronous httpx client with keep-alive, one message at a time, a synchronous commit after
each. Run as `python -m bench.naive BOOTSTRAP TOPIC GROUP RESULTS URL[,URL...] TIMEOUT`; each URL
is a hook (ids `naive`, `naive.1`, ...), posted in turn. SIGTERM stops it.
"""

from __future__ import annotations

import json
import signal
import sys
from types import FrameType

import httpx
from confluent_kafka import Producer

from bench.kafka import committing_consumer
from bench.workload import hook_ids, render_and_sign, result


def main(bootstrap: str, topic: str, group: str, results: str, urls: str, timeout: float) -> None:
    targets = list(zip(hook_ids("naive", urls), urls.split(","), strict=True))
    stopping = []

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    consumer = committing_consumer(bootstrap, group, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        while not stopping:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            value = message.value()
            assert value is not None  # every event the benchmark produces has a value
            event = json.loads(value)
            for hook_id, url in targets:
                body, headers = render_and_sign(event, hook_id)
                try:
                    status: int | None = client.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = None
                producer.produce(results, json.dumps(result(event, hook_id, status)))
                producer.poll(0)
            consumer.commit(message=message, asynchronous=False)
    producer.flush(10)
    consumer.close()


if __name__ == "__main__":
    bootstrap, topic, group, results, urls, timeout = sys.argv[1:7]
    main(bootstrap, topic, group, results, urls, float(timeout))
