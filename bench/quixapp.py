"""A Quix Streams application that posts each record with httpx: the stream-processing way.

A StreamingDataFrame over the events topic; each record is rendered, signed and POSTed with a
synchronous httpx client (keep-alive), and the result goes to the results topic with
`to_topic`. Quix's defaults, except a 1 s commit interval (the dispatcher commits every second;
Quix's default 5 s would only add waiting to the measurement). Run as
`python -m bench.quixapp BOOTSTRAP TOPIC GROUP RESULTS URL[,URL...] TIMEOUT`; each URL is a
hook (ids `quix`, `quix.1`, ...), posted in turn. SIGTERM stops it.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from typing import Any

import httpx
from quixstreams import Application

from bench.workload import hook_ids, render_and_sign, result


def main(bootstrap: str, topic: str, group: str, results: str, urls: str, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state:  # not ./state in the repo
        run(bootstrap, topic, group, results, urls, timeout, state)


def run(
    bootstrap: str, topic: str, group: str, results: str, urls: str, timeout: float, state: str
) -> None:
    targets = list(zip(hook_ids("quix", urls), urls.split(","), strict=True))
    app = Application(
        state_dir=state,
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        loglevel="WARNING",
    )
    client = httpx.Client(timeout=timeout, trust_env=False)

    def deliver(event: dict[str, Any]) -> list[dict[str, Any]]:
        outcomes = []
        for hook_id, url in targets:
            body, headers = render_and_sign(event, hook_id)
            try:
                status: int | None = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            outcomes.append(result(event, hook_id, status))
        return outcomes

    events = app.dataframe(app.topic(topic, value_deserializer="json"))
    events.apply(deliver, expand=True).to_topic(app.topic(results, value_serializer="json"))
    try:
        app.run()
    finally:
        client.close()


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)
    bootstrap, topic, group, results, urls, timeout = sys.argv[1:7]
    main(bootstrap, topic, group, results, urls, float(timeout))
