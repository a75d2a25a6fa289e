"""Dead-letter replay on the real broker, against a real receiver that fails and is then fixed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing, consume_all, produce
from registry_support import FakeRegistry
from rich.console import Console

from dispatcher.cli.commands import replay_command
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.avro import RegistrySchemas, registry_client, wire
from dispatcher.kafka.avro.schemas import released, write
from dispatcher.kafka.results import read_result
from dispatcher.kafka.store import hooks_in_force
from dispatcher.ops.replay.run import ReplayOptions, run_replay
from dispatcher.ops.replay.selection import Selection, selection_from


def end_offsets(bootstrap: str, *topics: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        ends = []
        for topic in topics:
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends.append(
                sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in parts
                )
            )
        return ends
    finally:
        consumer.close()


def test_replay_delivers_each_dead_letter_once_with_its_webhook_id_and_never_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/tax": Behaviour(status=422)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("tax", f"{receiver.url}/tax", ["order.paid"], retry={"max_attempts": 2}),
                hook("crm", f"{receiver.url}/crm", ["order.*"]),
            ],
            partitions=2,
        )
        events = [cloud_event("order.paid", {"n": i}) for i in range(4)]
        deployment.produce_events(events, keys=[f"k{i}" for i in range(4)])
        with deployment.worker():
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 4, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 8, 30)
        assert len(letters) == 4
        original_ids = {r.headers["webhook-id"] for r in receiver.received("/tax")}
        assert original_ids == {d.header("dispatcher.idempotency.key").decode() for d in letters}
        receiver.routes["/tax"] = Behaviour()  # the third party is fixed
        settings = deployment.settings
        hooks = hooks_in_force(settings)
        before = end_offsets(kafka_bootstrap, deployment.dead_letter, deployment.results)
        requests_before = len(receiver.received())

        plan, dry = run_replay(settings, hooks, ReplayOptions(Selection(), dry_run=True))
        assert (dry.selected, dry.delivered, dry.skipped, len(plan.send)) == (4, 0, 0, 4)
        assert len(receiver.received()) == requests_before
        assert end_offsets(kafka_bootstrap, deployment.dead_letter, deployment.results) == before

        console = Console(file=io.StringIO(), width=120)
        started = time.monotonic()
        assert replay_command(settings, ReplayOptions(Selection(), rate=50.0), console) == 0
        took = time.monotonic() - started
        progress = console.file.getvalue()  # type: ignore[attr-defined]
        assert "4/4" in progress
        assert "delivered 4, failed again 0, skipped 0" in progress
        replayed = receiver.received("/tax")[4:]
        assert sorted(r.headers["webhook-id"] for r in replayed) == sorted(original_ids)
        assert sorted(json.loads(r.body)["n"] for r in replayed) == [0, 1, 2, 3]
        assert len(receiver.received("/crm")) == 4  # the other hook of the events: untouched
        results = collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 12, 30)
        tax = [r.json() for r in results if r.json()["hook_id"] == "tax"]
        replay_results = [r for r in tax if r["outcome"] == "delivered"]
        assert len(results) == 12
        assert len(tax) == 8
        assert sorted(r["idempotency_key"] for r in replay_results) == sorted(original_ids)
        assert {r["source_topic"] for r in replay_results} == {deployment.events}
        assert {r["attempts"] for r in replay_results} == {1}  # its own, as result.avsc says

        def replayed_attempts(records: list[Any]) -> list[dict[str, Any]]:
            found = [r.json() for r in records]
            return [a for a in found if a["hook_id"] == "tax" and a["http_status"] == 200]

        attempts = collect_until(
            kafka_bootstrap, deployment.attempts, lambda rs: len(replayed_attempts(rs)) >= 4, 30
        )
        tax_attempts = replayed_attempts(attempts)  # the replay's attempts are recorded too
        assert sorted(a["idempotency_key"] for a in tax_attempts) == sorted(original_ids)
        assert {a["attempt"] for a in tax_attempts} == {1}  # a fresh attempt budget

        _, again = run_replay(settings, hooks, ReplayOptions(Selection()))
        assert (again.selected, again.delivered, again.failed, again.skipped) == (4, 0, 0, 4)
        assert again.skipped_reasons == {"already delivered": 4}
        assert len(receiver.received("/tax")) == 8
        print(f"replayed 4 dead letters in {took:.2f}s")


def test_a_replay_that_fails_again_dead_letters_anew_with_replayed_from(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/a": Behaviour(status=410), "/b": Behaviour(status=503)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("a", f"{receiver.url}/a", ["invoice.*"], retry={"max_attempts": 1}),
                hook("b", f"{receiver.url}/b", ["invoice.*"], retry={"max_attempts": 1}),
            ],
        )
        deployment.produce_raw(
            [
                Outgoing(
                    json.dumps(cloud_event("invoice.sent", {"n": i})),
                    key=f"inv-{i}",
                    headers=(
                        ("content-type", b"application/cloudevents+json"),
                        ("traceparent", f"00-trace-{i}-01".encode()),
                    ),
                )
                for i in range(3)
            ]
        )
        with deployment.worker():
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 6, timeout=60)
        assert sorted(d.header("dispatcher.error.kind") for d in letters) == [b"http_status"] * 6
        settings = deployment.settings
        selection = selection_from(
            now=time.time(), hook="a", since="1h", error_kind="http_status", limit=2
        )
        plan, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(selection))
        assert (summary.selected, summary.delivered, summary.failed) == (2, 0, 2)
        assert {letter.hook_id for letter in plan.send} == {"a"}
        everything = consume_all(kafka_bootstrap, deployment.dead_letter, 8, timeout=30)
        anew = [d for d in everything if d.header("dispatcher.replayed.from") is not None]
        assert len(everything) == 8
        assert len(anew) == 2
        replayed_from = {d.header("dispatcher.replayed.from").decode() for d in anew}
        assert replayed_from == {letter.where for letter in plan.send}
        by_place = {f"{d.topic}/{d.partition}/{d.offset}": d for d in letters}
        for letter in anew:
            old = by_place[letter.header("dispatcher.replayed.from").decode()]
            assert letter.key == old.key
            assert letter.value == old.value
            assert letter.header("traceparent") == old.header("traceparent")
            assert letter.header("dispatcher.idempotency.key") == old.header(
                "dispatcher.idempotency.key"
            )
            assert letter.header("dispatcher.hook.id") == b"a"
            assert letter.header("dispatcher.replay.of") is None
        assert len(receiver.received("/a")) == 5  # 3 first attempts, 2 replayed
        assert len(receiver.received("/b")) == 3  # hook b was not selected
        # the command says so in its exit code too, for the script or job that ran it
        again = subprocess.run(
            [
                *(sys.executable, "-m", "dispatcher", "replay", "--hook", "b", "--limit", "1"),
                *("--config", str(deployment.config_path)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "delivered 0, failed again 1, skipped 0" in again.stdout
        assert again.returncode == 1, again.stderr


def test_the_replay_command_dry_run_lists_and_changes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/x": Behaviour(status=400)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("x", f"{receiver.url}/x", ["thing.done"]),
            ],
        )
        deployment.produce_events([cloud_event("thing.done", {"n": 1})])
        with deployment.worker():
            consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
        receiver.routes["/x"] = Behaviour()
        before = end_offsets(kafka_bootstrap, deployment.dead_letter, deployment.results)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "dispatcher",
                "replay",
                "--dry-run",
                "--hook",
                "x",
                "--config",
                str(deployment.config_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert "dry run: nothing sent; selected 1, delivered 0" in cli.stdout
        assert "would send" in cli.stdout
        assert len(receiver.received("/x")) == 1
        assert end_offsets(kafka_bootstrap, deployment.dead_letter, deployment.results) == before
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "dispatcher",
                "replay",
                "--since",
                "yesterday",
                "--config",
                str(deployment.config_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1
        assert "not a time" in bad.stderr


def test_a_replay_writes_its_outcomes_in_the_configured_result_format(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """result_format: avro holds for replayed outcomes as for the worker's (one writer factory)."""
    with Receiver({"/erp": Behaviour(status=422)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 1})],
            extra={"result_format": "avro"},
        )
        deployment.produce_events([cloud_event("order.placed", {"n": i}) for i in range(2)])
        with deployment.worker():
            consume_all(kafka_bootstrap, deployment.dead_letter, 2, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 2, 30)
        receiver.routes["/erp"] = Behaviour()
        settings = deployment.settings
        _, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))
        assert (summary.delivered, summary.failed) == (2, 0)
        results = collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 4, 30)
    assert len(results) == 4
    assert all(r.value[:1] != b"{" for r in results)  # none of them JSON
    read = [read_result(r.value) for r in results]
    assert sorted(r["outcome"] for r in read) == ["dead_lettered"] * 2 + ["delivered"] * 2
    assert {r["hook_id"] for r in read} == {"erp"}


@pytest.mark.parametrize("framed", [True, False], ids=["registry", "schemaless"])
def test_a_pair_delivered_by_a_worker_of_the_release_before_is_not_replayed(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry, framed: bool
) -> None:
    """Avro results written before an upgrade (result-v1.avsc: framed with its registry id, or
    schemaless) still tell a replay which pairs were delivered."""
    config = {"url": registry.url} if framed else {}
    with Receiver({"/erp": Behaviour(status=422)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 1})],
            extra={"result_format": "avro", "schema_registry": config},
        )
        event = cloud_event("order.placed", {"n": 1})
        deployment.produce_events([event])
        with deployment.worker():
            (letter,) = consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
        key = (letter.header("dispatcher.idempotency.key") or b"").decode()
        v1 = released("result")[0]
        delivered = {  # the pair, delivered meanwhile by a worker of the first release
            **{field["name"]: field.get("default") for field in v1.parsed["fields"]},
            **{"event_id": event["id"], "event_type": event["type"], "hook_id": "erp"},
            **{"outcome": "delivered", "attempts": 1, "http_status": 200},
            **{"idempotency_key": key, "source_topic": deployment.events},
            **{"source_partition": 0, "source_offset": 0},
            **{"first_attempt_at": 1_796_661_000_000, "completed_at": 1_796_661_000_100},
        }
        value = write(delivered, v1)
        client = registry_client(config)
        if client is not None:
            subject = f"{deployment.results}-value"
            value = wire.frame(RegistrySchemas(client).register(subject, v1), value)
        produce(kafka_bootstrap, deployment.results, [Outgoing(value, key=event["id"])])
        receiver.routes["/erp"] = Behaviour()
        settings = deployment.settings
        _, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))
    assert (summary.selected, summary.delivered, summary.skipped) == (1, 0, 1)
    assert summary.skipped_reasons == {"already delivered": 1}
    assert len(receiver.received("/erp")) == 1  # the worker's one attempt: nothing sent again


def test_a_hook_ordered_by_key_is_replayed_one_letter_of_a_key_at_a_time_oldest_first(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """As a worker keeps `ordering: key`: a letter's retries end before the next letter of its
    key starts, so the third party sees a key's events in the order they happened."""
    steps = ["created", "packed", "shipped", "delivered"]
    with Receiver({"/wms": Behaviour(status=400)}) as receiver:
        wms = hook("wms", f"{receiver.url}/wms", ["shipment.*"], ordering="key")
        deployment = Deployment(kafka_bootstrap, tmp_path, [wms])
        events = [cloud_event(f"shipment.{step}", {"step": step}) for step in steps]
        deployment.produce_events(events, keys=["order-1"] * len(steps))
        with deployment.worker():
            consume_all(kafka_bootstrap, deployment.dead_letter, len(steps), timeout=60)
        receiver.routes["/wms"] = Behaviour(fail_first=1)  # each first attempt: 503, retried
        settings = deployment.settings

        _, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))

        assert (summary.delivered, summary.failed) == (len(steps), 0)
        seen = [json.loads(r.body)["step"] for r in receiver.received("/wms")[len(steps) :]]
        assert seen == [step for step in steps for _attempt in (1, 2)]
