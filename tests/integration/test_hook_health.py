"""Hook health on the real broker with two workers: a hook whose third party is gone pauses for
the whole cluster, ops hear of it on the operations topic (and a hook subscribed to those events
is told), and `hooks resume --replay` re-delivers what the pause held back."""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import wait_for
from rich.console import Console

from dispatcher.cli.hooks import list_command, pause_command, resume_command, show_command
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.engine.worker import Worker


def paused_everywhere(workers: list[Worker], hook_id: str) -> bool:
    return all(w.health is not None and w.health.held(hook_id) is not None for w in workers)


def gauge(worker: Worker, name: str, hook_id: str) -> float | None:
    return worker.metrics.registry.get_sample_value(name, {"hook": hook_id})


def letters_of_kind(records: list[Any], kind: str) -> list[Any]:
    return [r for r in records if r.header("dispatcher.error.kind") == kind.encode()]


def states_told(records: list[Any], hook_id: str) -> list[str]:
    """The operational events about `hook_id` in topic order, a duplicate (same id) once."""
    seen: set[str] = set()
    states: list[str] = []
    for record in records:
        event = record.json()
        if event["data"]["hook"] == hook_id and event["id"] not in seen:
            seen.add(event["id"])
            states.append(event["type"].rsplit(".", 1)[-1])
    return states


def test_a_hook_failing_past_pause_after_pauses_in_both_workers_and_resume_replays_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/erp": Behaviour(status=503)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "erp",
                    f"{receiver.url}/erp",
                    ["order.paid"],
                    pause_after="2s",  # failing is told after a quarter of it
                    retry={"max_attempts": 50, "max_age": "1h"},
                ),
                hook("chat", f"{receiver.url}/chat", ["dispatcher.hook.*"]),
            ],
            partitions=2,
            extra={"local_retries": 1, "hook_health_interval": "200ms"},
        )
        before = [cloud_event("order.paid", {"n": i}) for i in range(2)]
        deployment.produce_events(before, keys=["a", "b"])
        with deployment.worker() as first, deployment.worker() as second:
            workers = [first, second]
            wait_for(lambda: paused_everywhere(workers, "erp"), 60, message="erp paused in both")
            wait_for(
                lambda: all(gauge(w, "dispatcher_hook_paused", "erp") == 1 for w in workers),
                10,
                message="the paused gauge in both workers",
            )
            after = [cloud_event("order.paid", {"n": i}) for i in range(2, 4)]
            deployment.produce_events(after, keys=["c", "d"])
            letters = collect_until(
                kafka_bootstrap,
                deployment.dead_letter,
                lambda rs: len(letters_of_kind(rs, "paused")) >= 4,
                60,
            )
            paused = letters_of_kind(letters, "paused")
            assert len(paused) == len(letters) == 4  # nothing dead-lettered otherwise
            assert {json.loads(r.value)["data"]["n"] for r in paused} == {0, 1, 2, 3}
            keys = {r.header("dispatcher.idempotency.key").decode() for r in paused}
            new_keys = {
                r.header("dispatcher.idempotency.key").decode()
                for r in paused
                if json.loads(r.value)["data"]["n"] >= 2
            }
            sent = {r.headers["webhook-id"] for r in receiver.received("/erp")}
            assert not new_keys & sent  # no request for an event of a paused hook
            assert keys - new_keys <= sent  # the earlier ones were tried before the pause

            operations = collect_until(
                kafka_bootstrap,
                deployment.operations,
                lambda rs: states_told(rs, "erp") == ["failing", "paused"],
                30,
            )
            paused_event = next(
                r.json() for r in operations if r.json()["type"] == "dispatcher.hook.paused"
            )
            assert paused_event["data"]["reason"] == "auto"
            assert "503" in paused_event["data"]["last_error"]
            told = wait_for(
                lambda: (
                    {json.loads(r.body)["state"] for r in receiver.received("/chat")}
                    >= {"failing", "paused"}
                ),
                30,
                message="the chat hook told of failing and paused",
            )
            assert told
            assert {json.loads(r.body)["hook"] for r in receiver.received("/chat")} == {"erp"}

            receiver.routes["/erp"] = Behaviour()  # the third party is back
            requests_before = len(receiver.received("/erp"))
            console = Console(file=io.StringIO(), width=120)
            assert resume_command(deployment.settings, "erp", replay=True, console=console) == 0
            assert "4/4" in console.file.getvalue()  # type: ignore[attr-defined]
            replayed = Counter(
                r.headers["webhook-id"] for r in receiver.received("/erp")[requests_before:]
            )
            assert replayed == Counter(dict.fromkeys(keys, 1))  # each once, its own webhook-id
            wait_for(
                lambda: not any(w.health and w.health.held("erp") for w in workers),
                10,
                message="the pause lifted in both workers",
            )
            later = cloud_event("order.paid", {"n": 4})
            deployment.produce_events([later], keys=["e"])
            wait_for(
                lambda: any(
                    json.loads(r.body)["n"] == 4
                    for r in receiver.received("/erp")[requests_before:]
                ),
                30,
                message="a new event delivered after the resume",
            )
            operations = collect_until(
                kafka_bootstrap,
                deployment.operations,
                lambda rs: states_told(rs, "erp") == ["failing", "paused", "resumed"],
                30,
            )
        assert all(gauge(w, "dispatcher_hook_paused", "erp") == 0 for w in workers)


def test_a_hook_paused_by_hand_dead_letters_at_once_until_resumed(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["customer.*"])],
            extra={"hook_health_interval": "200ms"},
        )
        absent = f"absent-health-{uuid.uuid4().hex}"
        elsewhere = replace(
            deployment.settings, topics=replace(deployment.settings.topics, health=absent)
        )
        assert list_command(elsewhere) == 0
        assert "HEALTH" not in capsys.readouterr().out  # no health topic: nothing extra,
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        assert absent not in admin.list_topics(timeout=10).topics  # and none made by a look
        with deployment.worker() as worker:
            assert list_command(deployment.settings) == 0
            assert "HEALTH" not in capsys.readouterr().out  # nothing decided: nothing extra
            assert pause_command(deployment.settings, "crm") == 0
            assert pause_command(deployment.settings, "crm") == 0  # again: nothing changes
            capsys.readouterr()
            assert list_command(deployment.settings) == 0
            rows = capsys.readouterr().out.splitlines()
            assert rows[0].split()[:4] == ["ID", "TENANT", "ENABLED", "HEALTH"]
            assert rows[1].split()[:4] == ["crm", "-", "yes", "paused"]
            assert show_command(deployment.settings, "crm") == 0
            assert capsys.readouterr().out.startswith("# paused by hand since ")
            wait_for(lambda: worker.health and worker.health.held("crm"), 10, message="paused")
            deployment.produce_events([cloud_event("customer.created", {"n": 1})])
            letters = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: rs, 30)
            assert letters[0].header("dispatcher.error.kind") == b"paused"
            assert receiver.received("/crm") == []
            operations = collect_until(
                kafka_bootstrap, deployment.operations, lambda rs: len(rs) >= 1, 30
            )
            assert [r.json()["data"]["reason"] for r in operations] == ["manual"]
            assert resume_command(deployment.settings, "crm") == 0
            wait_for(lambda: not worker.health.held("crm"), 10, message="resumed")  # type: ignore[union-attr]
            capsys.readouterr()
            assert list_command(deployment.settings) == 0
            assert "paused" not in capsys.readouterr().out
            deployment.produce_events([cloud_event("customer.created", {"n": 2})])
            wait_for(lambda: receiver.received("/crm"), 30, message="delivered after the resume")
