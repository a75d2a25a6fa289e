"""Outcome records Kafka refuses for their size, through a running worker and a real broker:
the broker's refusal comes in a delivery report, which only a broker gives."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import create_topic, wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.model.outcome import VALUE_OMITTED


def test_a_dead_letter_too_large_for_its_topic_is_written_without_the_event_and_committed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/reject": Behaviour(status=400)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("crm", f"{receiver.url}/reject", ["order.*"])]
        )
        # the dead-letter topic takes 20 KB at most; the input topic, the broker's default
        create_topic(kafka_bootstrap, deployment.dead_letter, config={"max.message.bytes": "20000"})
        noise = base64.b64encode(os.urandom(45_000)).decode()  # 60 KB that no codec shrinks much
        big = cloud_event("order.paid", {"blob": noise}, event_id="big")
        small = cloud_event("order.paid", {"n": 1}, event_id="small")
        deployment.produce_events([big, small])
        with deployment.worker():
            letters = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda r: len(r) >= 2, 60
            )
            results = collect_until(kafka_bootstrap, deployment.results, lambda r: len(r) >= 2, 30)
            wait_for(lambda: deployment.committed() == 2, 30, message="both offsets committed")

    assert sorted(r.json()["outcome"] for r in results) == ["dead_lettered", "dead_lettered"]
    by_offset = {int(r.header("dispatcher.source.offset") or b"-1"): r for r in letters}
    assert set(by_offset) == {0, 1}
    left_out, kept = by_offset[0], by_offset[1]
    assert left_out.value is None
    assert (left_out.header(VALUE_OMITTED) or b"").startswith(b"too large for Kafka")
    assert left_out.header("dispatcher.error.kind") == b"http_status"
    assert left_out.header("dispatcher.source.topic") == deployment.events.encode()
    assert kept.value == json.dumps(small).encode()  # the partition went on past the big one
    assert kept.header(VALUE_OMITTED) is None
