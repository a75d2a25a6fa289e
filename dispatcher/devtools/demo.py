"""`dispatcher demo`: the whole system on this machine, then a summary, then nothing left running.

It starts a local Kafka broker, a receiver that answers like three third parties (an SMS gateway,
a payment provider, a shipping company that rejects some shipments), the dispatcher with the
example hooks of deploy/examples/hooks pointed at that receiver, and produces sample events.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.receiver import Behaviour, Received, Receiver
from dispatcher.engine.worker import Worker
from dispatcher.hooks.loader import load_hooks_file
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "hooks"
DEMO_HOOKS = ("sms-gateway", "payment", "shipping")
DEMO_SECRETS = {
    "SMS_API_KEY": "demo-sms-key",
    "PAYMENT_API_TOKEN": "demo-token",
    "SHIPPING_PASSWORD": "demo-password",
}
TEMPLATES = ("order-shipped.json", "order-placed.json", "order-packed.json")
ANSWERS = {
    "/sms-gateway": Behaviour(body=b"OK 7781", content_type="text/plain"),
    "/payment": Behaviour(status=201, body=b'{"id":"ch_1","status":"succeeded"}'),
    "/shipping": Behaviour(
        body=b"<ShipmentResponse><Status>ACCEPTED</Status>"
        b"<TrackingNumber>KE123</TrackingNumber></ShipmentResponse>",
        content_type="application/xml",
    ),
}
REJECTED = Behaviour(
    status=422, body=b"<Error>Unknown town</Error>", content_type="application/xml"
)
TIMEOUT = 90.0


def run_demo(events: int = 30, console: Console | None = None) -> int:
    """Run the demo end to end; 0 when every pair reached an end."""
    console = console or Console(width=max(Console().width, 120))
    # librdkafka's transient warnings (a coordinator still loading) are not the demo's story
    logging.getLogger("dispatcher.librdkafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="dugaa-demo-") as workdir:
        kafka = LocalKafka()
        console.print("[bold]1/5[/] starting a local Kafka broker (KRaft, 127.0.0.1) ...")
        bootstrap = kafka.start(Path(workdir) / "kafka")
        try:
            return _with_broker(bootstrap, events, console)
        finally:
            kafka.stop()
            console.print("stopped the broker, the receiver and the dispatcher.")


def _with_broker(bootstrap: str, events: int, console: Console) -> int:
    with Receiver(dict(ANSWERS)) as receiver:
        receiver.responder = _reject_every_fourth_shipment()
        console.print(
            f"[bold]2/5[/] receiver answering as {', '.join(DEMO_HOOKS)} on {receiver.url}"
        )
        hooks = _demo_hooks(receiver.url)
        settings = Settings(
            kafka={"bootstrap.servers": bootstrap},
            group_id="dugaa-demo",
            topics=Topics(events=("dugaa.events",), retry=(2.0,)),
            http_port=0,
            allow_loopback=True,  # the receiver is on loopback
            drain_timeout=10.0,
        )
        worker = Worker(settings, HookIndex(hooks))
        thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
        console.print(f"[bold]3/5[/] dispatcher running with {len(hooks)} hooks")
        thread.start()
        try:
            expected = _produce(bootstrap, events, HookIndex(hooks))
            console.print(
                f"[bold]4/5[/] produced {events} sample events ({expected} deliveries due)"
            )
            results = _collect(bootstrap, settings.topics.results, expected)
        finally:
            worker.request_stop()
            thread.join(timeout=60)
        console.print("[bold]5/5[/] summary")
        _summary(console, hooks, results, receiver.received())
        return 0 if len(results) >= expected else 1


def _demo_hooks(base_url: str) -> list[Hook]:
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    hooks = []
    for hook_id in DEMO_HOOKS:
        (hook,) = load_hooks_file(EXAMPLES / f"{hook_id}.yaml")
        hooks.append(dataclasses.replace(hook, url=f"{base_url}/{hook_id}", rate_limit=None))
    return hooks


def _reject_every_fourth_shipment() -> Any:
    counter = itertools.count(1)

    def respond(request: Received) -> Behaviour | None:
        if request.path == "/shipping" and next(counter) % 4 == 0:
            return REJECTED
        return None

    return respond


def _produce(bootstrap: str, count: int, hooks: HookIndex) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    templates = [json.loads((EXAMPLES / "events" / name).read_text()) for name in TEMPLATES]
    expected = 0
    for i in range(count):
        event = {**templates[i % len(templates)], "id": str(uuid.uuid4())}
        expected += len(hooks.match(event["type"]))
        producer.produce(
            "dugaa.events",
            json.dumps(event).encode(),
            key=f"order-{i}".encode(),
            headers=[("content-type", b"application/cloudevents+json")],
        )
    producer.flush(30)
    return expected


def _collect(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    deadline = time.monotonic() + TIMEOUT
    results: list[dict[str, Any]] = []
    try:
        while not consumer.list_topics(topic, timeout=5).topics[topic].partitions:
            if time.monotonic() > deadline:
                return results
        parts = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        while len(results) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                value = message.value()
                if message.error() is None and value:
                    results.append(json.loads(value))
    finally:
        consumer.close()
    return results


def _summary(
    console: Console, hooks: list[Hook], results: list[dict[str, Any]], received: list[Received]
) -> None:
    table = Table(title="Deliveries per hook")
    for column in (
        "hook",
        "format",
        "delivered",
        "dead-lettered",
        "error kinds",
        "captured (sample)",
    ):
        table.add_column(column)
    for hook in hooks:
        mine = [r for r in results if r["hook_id"] == hook.id]
        delivered = [r for r in mine if r["outcome"] == "delivered"]
        dead = [r for r in mine if r["outcome"] == "dead_lettered"]
        kinds = sorted({str(r["error_kind"]) for r in dead})
        captured = json.dumps(delivered[0]["captured"]) if delivered else "-"
        table.add_row(
            hook.id,
            hook.format,
            str(len(delivered)),
            str(len(dead)),
            ", ".join(kinds) or "-",
            captured,
        )
    console.print(table)
    for hook in hooks:
        sample = next((r for r in received if r.path == f"/{hook.id}"), None)
        if sample is None:
            continue
        console.print(
            f"\n[bold]{hook.id}[/] received: {sample.method} {sample.path}  "
            f"content-type: {sample.headers.get('content-type')}  "
            f"webhook-id: {sample.headers.get('webhook-id')}"
        )
        console.print(sample.body.decode("utf-8", "replace")[:400], markup=False, highlight=False)
