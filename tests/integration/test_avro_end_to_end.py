"""Avro through a running worker: wire-format events delivered like JSON ones, Avro results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from admin_support import TOKEN_ENV, VIEWER, AdminDeployment, indexed, running_admin
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing, produce
from registry_support import FakeRegistry

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.avro import RegistrySchemas, produce_value, registry_client
from dispatcher.kafka.avro.schemas import released, write
from dispatcher.kafka.avro.wire import frame
from dispatcher.kafka.results import read_avro_result
from dispatcher.kafka.store import hooks_in_force
from dispatcher.model.event import Event
from dispatcher.ops.replay.plan import Selection
from dispatcher.ops.replay.run import ReplayOptions, run_replay


def test_avro_events_are_delivered_and_results_are_avro_in_the_registry(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    config = {"url": registry.url}
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "erp",
                    f"{receiver.url}/erp",
                    ["order.placed"],
                    fields=[{"name": "OrderNo", "from": "data.order_id"}],
                ),
            ],
            extra={"schema_registry": config, "result_format": "avro"},
        )
        avro_events = [
            Event.from_dict(cloud_event("order.placed", {"order_id": f"A{i}"})) for i in range(3)
        ]
        records = []
        for event in avro_events:
            value, content_type = produce_value(
                event, topic=deployment.events, schema_registry=config
            )
            records.append(Outgoing(value, headers=(("content-type", content_type.encode()),)))
        json_event = cloud_event("order.placed", {"order_id": "J1"})
        records.append(Outgoing(json.dumps(json_event)))
        corrupt = records[0].value[:5] + b"\xff\xff\xff not avro"  # type: ignore[index]
        records.append(Outgoing(corrupt, headers=(("content-type", b"application/avro"),)))
        deployment.produce_raw(records)
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 4, 60
            )
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 1, 30
            )
        bodies = sorted(json.loads(r.body)["OrderNo"] for r in receiver.received("/erp"))
        assert bodies == ["A0", "A1", "A2", "J1"]  # Avro events rendered exactly like JSON ones
        client = registry_client(config)
        assert client is not None
        schemas = RegistrySchemas(client)
        read = [read_avro_result(r.value, schemas) for r in results]
        assert {r["outcome"] for r in read} == {"delivered"}
        assert {r["event_id"] for r in read} == {e.id for e in avro_events} | {json_event["id"]}
        assert any(s["subject"] == f"{deployment.results}-value" for s in registry.schemas)
        assert dead[0].header("dispatcher.error.kind") == b"decode"
        assert dead[0].value == corrupt


def test_a_retrying_avro_event_the_registry_cannot_serve_is_a_dead_letter_a_replay_sends(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    """The event waits in a retry tier; the worker that takes it next cannot reach the
    registry, so it is dead-lettered as `decode`, keeping its pair (hook, webhook-id, where
    it entered), and a replay delivers it once the registry is back."""
    config = {"url": registry.url}
    with Receiver({"/erp": Behaviour(status=503)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 50})],
            retry=("1s",),
            extra={"schema_registry": config, "local_retries": 0},
        )
        event = Event.from_dict(cloud_event("order.placed", {"order_id": "A1"}))
        value, content_type = produce_value(event, topic=deployment.events, schema_registry=config)
        deployment.produce_raw(
            [Outgoing(value, key="order-1", headers=(("content-type", content_type.encode()),))]
        )
        tier = deployment.settings.topics.retry_topic(0)
        with deployment.worker():
            collect_until(kafka_bootstrap, tier, lambda rs: rs, 60)
        registry.fail_with = 503  # away when the next worker fetches the event's schema
        with deployment.worker():
            (letter,) = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: rs, 60)
        registry.fail_with = None
        receiver.routes["/erp"] = Behaviour()
        sent = receiver.received("/erp")
        settings = deployment.settings
        _, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))
    key = sent[0].headers["webhook-id"]
    assert (letter.key, letter.value) == (b"order-1", value)
    assert letter.header("dispatcher.error.kind") == b"decode"
    assert letter.header("dispatcher.hook.id") == b"erp"
    assert letter.header("dispatcher.idempotency.key") == key.encode()
    assert letter.header("dispatcher.source.topic") == deployment.events.encode()
    assert (summary.selected, summary.delivered) == (1, 1)
    replayed = receiver.received("/erp")[len(sent) :]
    assert [r.headers["webhook-id"] for r in replayed] == [key]
    assert json.loads(replayed[0].body) == {"order_id": "A1"}


def test_the_admin_index_looks_up_an_avro_event_by_its_id_in_its_dead_letters_and_results(
    kafka_bootstrap: str,
    tmp_path: Path,
    registry: FakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index reads a dead letter's event as a worker reads it, Avro too, so the event
    look-up finds it; and results of the release before (result-v1.avsc) as today's."""
    for name, token in TOKEN_ENV.items():
        monkeypatch.setenv(name, token)
    config = {"url": registry.url}
    with Receiver({"/erp": Behaviour(status=422)}) as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 1})],
            extra={"schema_registry": config, "result_format": "avro"},
        )
        event = Event.from_dict(cloud_event("order.placed", {"order_id": "A1"}))
        value, content_type = produce_value(event, topic=deployment.events, schema_registry=config)
        deployment.produce_raw([Outgoing(value, headers=(("content-type", content_type),))])
        with deployment.worker():
            collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: rs, 60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: rs, 30)
        (v1,) = released("result")  # crm's outcome, written by a worker of the release before
        earlier = {field["name"]: field.get("default") for field in v1.parsed["fields"]}
        earlier.update(event_id=event.id, event_type=event.type, hook_id="crm")
        earlier.update(outcome="delivered", attempts=1, http_status=200, idempotency_key="m")
        earlier.update(source_topic=deployment.events, source_partition=0, source_offset=0)
        earlier.update(first_attempt_at=1_796_661_000_000, completed_at=1_796_661_000_100)
        client = registry_client(config)
        assert client is not None
        v1_id = RegistrySchemas(client).register(f"{deployment.results}-value", v1)
        produce(kafka_bootstrap, deployment.results, [Outgoing(frame(v1_id, write(earlier, v1)))])
        with running_admin(deployment.settings) as admin, admin.client(headers=VIEWER) as client:
            indexed(admin, 3)  # two results, one dead letter
            looked_up = client.get(f"/api/events/{event.id}").json()
    assert {(o["hook_id"], o["outcome"]) for o in looked_up["outcomes"]} == {
        ("erp", "dead_lettered"),
        ("crm", "delivered"),
    }
    (letter,) = looked_up["dead_letters"]
    assert (letter["hook_id"], letter["event_id"], letter["http_status"]) == ("erp", event.id, 422)
