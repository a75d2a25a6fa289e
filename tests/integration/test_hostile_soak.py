"""A soak through a running worker: hostile events mixed with good ones, on a real broker.

Every hostile event must become a dead letter with its kind (`decode`, `render`,
`payload_too_large`, `blocked`), every good one must be delivered, and the worker must live
through it all: its consumer thread alive, /healthz answering, a clean stop at the end.
`DUGAA_SOAK_EVENTS` sets how many of each; the default is the issue's 10,000 (20,000 events,
about 25 s on a two-core machine).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing

from dispatcher.devtools.receiver import Receiver

EVENTS = int(os.environ.get("DUGAA_SOAK_EVENTS", "10000"))
STRUCTURED = (("content-type", b"application/cloudevents+json"),)
BINARY = (("ce_specversion", b"1.0"), ("ce_id", b"b"), ("ce_type", b"soak.good"),
          ("ce_source", b"/soak"))  # fmt: skip
DEEP_EVENT = '{"specversion":"1.0","id":"x","type":"t","source":"s","data":%s}' % (
    "[" * 10_000 + "]" * 10_000
)


def event_record(event_type: str, data: object, key: str) -> Outgoing:
    return Outgoing(json.dumps(cloud_event(event_type, data)), key=key, headers=STRUCTURED)


# Each hostile shape: the kind its dead letter must carry, and how to make the i-th record.
HOSTILE: list[tuple[str, Callable[[str], Outgoing]]] = [
    ("decode", lambda k: Outgoing(b"\xff\xfe not json " + k.encode(), key=k)),
    ("decode", lambda k: Outgoing(json.dumps([k, 1, 2]), key=k, headers=STRUCTURED)),
    ("decode", lambda k: Outgoing(DEEP_EVENT, key=k, headers=STRUCTURED)),  # 10,000 levels
    ("decode", lambda k: Outgoing(json.dumps({"specversion": "1.0", "id": k}), key=k)),
    ("decode", lambda k: Outgoing(b"{not json", key=k, headers=BINARY)),
    ("decode", lambda k: Outgoing(b"{}", key=k, headers=(*BINARY[:1], ("ce_id", b"\xff")))),
    ("render", lambda k: event_record("soak.amount", {"total": "12,50 EUR"}, k)),
    ("render", lambda k: event_record("soak.amount", {"total": {"{data.secret}": 1}}, k)),
    ("render", lambda k: event_record("soak.amount", {"other": 1}, k)),  # required, missing
    ("render", lambda k: event_record("soak.xml", {"1 not an element": k}, k)),
    ("payload_too_large", lambda k: event_record("soak.note", {"note": "x" * 4096}, k)),
    ("blocked", lambda k: event_record("soak.blocked", {"n": k}, k)),
]


def alive(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        healthy = answer.status == 200
    return healthy and any(
        t.name.startswith("consumer") and t.is_alive() for t in threading.enumerate()
    )


@pytest.mark.timeout(300 if EVENTS <= 10_000 else 3600)
def test_hostile_events_mixed_with_good_ones_are_all_dead_lettered_and_the_good_all_delivered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "good",
                    f"{receiver.url}/good",
                    ["soak.good"],
                    concurrency=100,
                    fields=[{"name": "n", "from": "data.n", "type": "integer"}],
                ),
                hook(
                    "amount",
                    f"{receiver.url}/amount",
                    ["soak.amount"],
                    fields=[
                        {
                            "name": "amount",
                            "from": "data.total",
                            "type": "decimal",
                            "required": True,
                        }
                    ],
                ),
                hook("xml", f"{receiver.url}/xml", ["soak.xml"], format="xml"),
                hook("note", f"{receiver.url}/note", ["soak.note"], max_payload_bytes=1024),
                hook(
                    "blocked",
                    f"{receiver.url}/blocked",
                    ["soak.blocked"],
                    allow_loopback=False,
                ),
            ],
            partitions=3,
        )
        records: list[Outgoing] = []
        expected: dict[str, str] = {}
        good_ids: set[str] = set()
        for i in range(EVENTS):
            kind, make = HOSTILE[i % len(HOSTILE)]
            expected[f"h-{i}"] = kind
            records.append(make(f"h-{i}"))
            good = cloud_event("soak.good", {"n": i})
            good_ids.add(good["id"])
            records.append(Outgoing(json.dumps(good), key=f"g-{i}", headers=STRUCTURED))
        deployment.produce_raw(records)
        started = time.monotonic()
        with deployment.worker() as worker:
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= EVENTS, 240
            )
            with_hook = sum(1 for kind in expected.values() if kind != "decode")
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= EVENTS + with_hook, 240
            )
            seconds = time.monotonic() - started
            assert worker.status is not None
            assert alive(worker.status.port)
        print(f"\nsoak: {2 * EVENTS} events through one worker in {seconds:.1f}s")
        delivered = [r.path for r in receiver.received()]
    # every hostile event has exactly one dead letter, of its own kind
    kinds = {(d.key or b"").decode(): (d.header("dispatcher.error.kind") or b"").decode()
             for d in dead}  # fmt: skip
    assert len(dead) == EVENTS
    assert kinds == expected
    assert Counter(kinds.values()) == Counter(expected.values())
    # every good event is delivered, once; nothing hostile reached the receiver
    outcomes = [r.json() for r in results]
    good_results = [o for o in outcomes if o["hook_id"] == "good"]
    assert {o["event_id"] for o in good_results} == good_ids
    assert all(o["outcome"] == "delivered" for o in good_results)
    assert delivered == ["/good"] * EVENTS
    hostile_results = [o for o in outcomes if o["hook_id"] != "good"]
    assert len(hostile_results) == with_hook
    assert all(o["outcome"] == "dead_lettered" for o in hostile_results)
