"""Avro through a running worker: wire-format events delivered like JSON ones, Avro results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from admin_support import TOKEN_ENV, VIEWER, AdminDeployment, indexed, running_admin
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing, produce, wait_for
from registry_support import FakeRegistry, avro_erp_hook, running_registry

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.avro import RegistrySchemas, produce_value, registry_client
from dispatcher.kafka.avro.schemas import released, write
from dispatcher.kafka.avro.wire import frame
from dispatcher.kafka.results import read_avro_result
from dispatcher.model.event import Event
from dispatcher.model.outcome import idempotency_key

SHARE = {"consume": "share", "drain_timeout": "4s"}


def test_avro_events_are_delivered_and_results_are_avro_in_the_registry(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    config = {"url": registry.url}
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                avro_erp_hook(receiver.url),
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


def test_fresh_avro_events_wait_out_a_registry_outage_and_are_delivered(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    """The registry answers 503 as the events come: each was a `decode` dead letter with no
    hook, which a replay skips. Now their partition is held, uncommitted, and read again until
    the registry is back; the other partition's event is delivered meanwhile."""
    config = {"url": registry.url}
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [avro_erp_hook(receiver.url)],
            partitions=2,
            extra={"schema_registry": config},
        )
        avro = []
        for n in range(3):
            event = Event.from_dict(cloud_event("order.placed", {"order_id": f"A{n}"}))
            value, media = produce_value(event, topic=deployment.events, schema_registry=config)
            avro.append(Outgoing(value, headers=(("content-type", media),), partition=0))
        schema = f"/schemas/ids/{registry.schemas[0]['id']}"
        registry.fail_with = 503
        json_event = json.dumps(cloud_event("order.placed", {"order_id": "J1"}))
        deployment.produce_raw([*avro, Outgoing(json_event, partition=1)])
        with deployment.worker() as worker:
            wait_for(lambda: receiver.received("/erp"), 60, message="the other partition's event")
            wait_for(lambda: registry.gets[schema] >= 2, 60, message="the held event read again")
            held = worker.metrics.registry.get_sample_value("dispatcher_registry_held_partitions")
            registry.fail_with = None
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 4, 60)
        bodies = [json.loads(r.body)["OrderNo"] for r in receiver.received("/erp")]
    assert held == 1
    assert bodies == ["J1", "A0", "A1", "A2"]
    assert deployment.written(deployment.dead_letter) == 0


def test_in_queue_mode_fresh_avro_events_wait_out_a_registry_outage_in_a_retry_tier(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    """As in group mode, but a share group has no partition of its own to hold: each event
    was a `decode` dead letter with no hook. Now the record is handed to the first retry tier
    (in the consumer group), accepted, and waits there for the registry; then it is delivered
    as a fresh event, its results pointing at where it entered, and the JSON event beside it
    flows meanwhile."""
    config = {"url": registry.url}
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [avro_erp_hook(receiver.url)],
            extra={"schema_registry": config, **SHARE},
        )
        avro, events = [], []
        for n in range(3):
            event = Event.from_dict(cloud_event("order.placed", {"order_id": f"A{n}"}))
            value, media = produce_value(event, topic=deployment.events, schema_registry=config)
            avro.append(Outgoing(value, headers=(("content-type", media),)))
            events.append(event)
        registry.fail_with = 503
        json_event = json.dumps(cloud_event("order.placed", {"order_id": "J1"}))
        deployment.produce_raw([*avro, Outgoing(json_event)])
        with deployment.worker() as worker:
            wait_for(lambda: receiver.received("/erp"), 60, message="the JSON event")
            wait_for(
                lambda: worker.metrics.registry.get_sample_value(
                    "dispatcher_registry_held_partitions"
                ),
                60,
                message="the tier's partition held",
            )
            asked = registry.gets.total()
            wait_for(lambda: registry.gets.total() > asked, 60, message="the tier read again")
            registry.fail_with = None
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 4, 60
            )
        received = receiver.received("/erp")
    assert sorted(json.loads(r.body)["OrderNo"] for r in received) == ["A0", "A1", "A2", "J1"]
    assert {r.json()["outcome"] for r in results} == {"delivered"}
    sources = {(r.json()["source_topic"], r.json()["source_offset"]) for r in results}
    assert sources == {(deployment.events, offset) for offset in range(4)}
    keys = {idempotency_key(event, "erp") for event in events}
    assert keys < {r.headers["webhook-id"] for r in received}  # as the worker first made them
    assert deployment.written(deployment.dead_letter) == 0


@pytest.mark.parametrize("consume", ["group", "share"])
def test_avro_events_wait_out_a_registry_that_refuses_connections(
    kafka_bootstrap: str, tmp_path: Path, consume: str
) -> None:
    """Connection refused: the registry's process is down, then started again on its port. In
    queue mode the partition held is the retry tier's the event waits in."""
    with running_registry() as registry, Receiver() as receiver:
        config = {"url": registry.url}
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.placed"])],
            extra={"schema_registry": config, **(SHARE if consume == "share" else {})},
        )
        event = Event.from_dict(cloud_event("order.placed", {"order_id": "A1"}))
        value, media = produce_value(event, topic=deployment.events, schema_registry=config)
        schemas, port = registry.schemas, registry.server_address[1]
        registry.shutdown()
        registry.server_close()
        deployment.produce_raw([Outgoing(value, headers=(("content-type", media),))])
        with deployment.worker() as worker:
            wait_for(
                lambda: worker.metrics.registry.get_sample_value(
                    "dispatcher_registry_held_partitions"
                ),
                60,
                message="the partition held",
            )
            with running_registry(port) as again:
                again.schemas = schemas
                collect_until(kafka_bootstrap, deployment.results, lambda rs: rs, 60)
        assert [json.loads(r.body) for r in receiver.received("/erp")] == [{"order_id": "A1"}]
    assert deployment.written(deployment.dead_letter) == 0


def test_a_retrying_avro_event_the_registry_cannot_serve_waits_in_its_tier_for_it(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    """The event waits in a retry tier; the worker that takes it next cannot reach the
    registry, so the tier's partition is held until it is back, and the pair is delivered with
    its webhook-id: no dead letter."""
    config = {"url": registry.url, "max.retries": 0}  # one request a look-up, old code or new
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
        schema = f"/schemas/ids/{registry.schemas[0]['id']}"
        asked = registry.gets[schema]
        registry.fail_with = 503  # away when the next worker fetches the event's schema
        receiver.routes["/erp"] = Behaviour()
        sent = len(receiver.received("/erp"))
        with deployment.worker():
            wait_for(lambda: registry.gets[schema] >= asked + 2, 60, message="read again")
            registry.fail_with = None
            (result,) = collect_until(kafka_bootstrap, deployment.results, lambda rs: rs, 60)
        delivered = receiver.received("/erp")[sent:]
    key = receiver.received("/erp")[0].headers["webhook-id"]
    assert result.json()["outcome"] == "delivered"
    assert [r.headers["webhook-id"] for r in delivered] == [key]
    assert json.loads(delivered[0].body) == {"order_id": "A1"}
    assert deployment.written(deployment.dead_letter) == 0


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
        v1 = released("result")[0]  # crm's outcome, written by a worker of the first release
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
