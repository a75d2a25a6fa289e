"""The hook store on the real broker: hot apply and delete in a running worker, refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from dispatch_support import Deployment, cloud_event, collect_until, hook, wait_ready
from kafka_support import Outgoing, produce, wait_for

from dispatcher.cli.commands import apply_command, delete_command, list_command, show_command
from dispatcher.devtools.receiver import Receiver
from dispatcher.errors import ConfigError


class StoreDeployment(Deployment):
    """A deployment whose hook store is a topic of its own."""

    def write(self) -> None:
        super().write()
        config = yaml.safe_load(self.config_path.read_text())
        config["topics"]["hooks"] = f"store-{self.group}"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def hooks_file(directory: Path, name: str, hooks: list[dict[str, Any]]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"hooks": hooks}, sort_keys=False))
    return path


def delivered_ids(bootstrap: str, deployment: Deployment, wanted: set[str]) -> set[str]:
    """The event ids whose results have arrived, once all of `wanted` have."""
    records = collect_until(
        bootstrap,
        deployment.results,
        lambda rs: wanted <= {r.json()["event_id"] for r in rs},
        timeout=30,
    )
    return {r.json()["event_id"] for r in records}


def test_a_hook_applied_to_a_running_worker_takes_effect_within_seconds_and_ends_at_delete(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = StoreDeployment(
            kafka_bootstrap, tmp_path, [hook("audit", f"{receiver.url}/audit", ["marker"])]
        )
        settings = deployment.settings
        new = hooks_file(tmp_path, "sms.yaml", [hook("sms", f"{receiver.url}/sms", ["order.*"])])
        with deployment.worker() as worker:
            wait_ready(worker)
            assert worker.hooks.get("sms") is None
            started = time.monotonic()
            assert apply_command(settings, new) == 0
            wait_for(lambda: worker.hooks.get("sms") is not None, 10, message="sms in force")
            took_effect = time.monotonic() - started
            first = cloud_event("order.shipped", {"n": 1})
            deployment.produce_events([first])
            wait_for(lambda: receiver.received("/sms"), 15, message="delivery to sms")
            delivered_after = time.monotonic() - started

            assert delete_command(settings, "sms") == 0
            wait_for(lambda: worker.hooks.get("sms") is None, 10, message="sms deleted")
            late, marker = cloud_event("order.shipped", {"n": 2}), cloud_event("marker", {})
            deployment.produce_events([late, marker])
            delivered_ids(kafka_bootstrap, deployment, {first["id"], marker["id"]})
        print(f"apply -> in force {took_effect:.2f}s, apply -> delivered {delivered_after:.2f}s")
        assert took_effect < 5
        assert [json.loads(r.body) for r in receiver.received("/sms")] == [{"n": 1}]
        assert [r.path for r in receiver.received()].count("/audit") == 1


def test_an_invalid_apply_is_refused_whole_and_the_previous_definition_stays(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = StoreDeployment(kafka_bootstrap, tmp_path, [])
        settings = deployment.settings
        v1 = hooks_file(tmp_path, "v1.yaml", [hook("crm", f"{receiver.url}/v1", ["customer.*"])])
        assert apply_command(settings, v1) == 0
        end_before = end_offset(kafka_bootstrap, settings.topics.hooks)
        broken = hooks_file(
            tmp_path,
            "v2.yaml",
            [
                hook("crm", f"{receiver.url}/v2", ["customer.*"]),
                hook("erp", f"{receiver.url}/erp", ["order.*"], format="yaml"),
            ],
        )
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "dispatcher",
                "hooks",
                "apply",
                str(broken),
                "--config",
                str(deployment.config_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 1, cli.stderr
        assert re.search(rf"{re.escape(str(broken))}:\d+: hooks\[1\]\.format", cli.stderr)
        literal = hooks_file(
            tmp_path,
            "v3.yaml",
            [
                hook(
                    "crm",
                    f"{receiver.url}/v3",
                    ["customer.*"],
                    auth={"type": "bearer", "token": "s3cr3t"},
                )
            ],
        )
        with pytest.raises(ConfigError, match="secret references only") as refused:
            apply_command(settings, literal)
        assert "s3cr3t" not in str(refused.value)
        assert end_offset(kafka_bootstrap, settings.topics.hooks) == end_before

        # A record written past the validation (not by `apply`) does not load on a worker: it
        # is kept as unusable (never dropped, never the old definition): a config dead letter.
        produce(
            kafka_bootstrap,
            settings.topics.hooks,
            [Outgoing(json.dumps({"id": "crm", "events": []}), key="crm")],
        )
        event = cloud_event("customer.created", {"name": "x"})
        deployment.produce_events([event])
        with deployment.worker() as worker:
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 30
            )
            crm = worker.hooks.get("crm")
        assert crm is not None
        assert crm.unusable is not None
        (result,) = [r.json() for r in results]
        assert (result["event_id"], result["hook_id"]) == (event["id"], "crm")
        assert (result["outcome"], result["error_kind"]) == ("dead_lettered", "config")
        assert receiver.received() == []


def test_a_worker_reads_the_whole_store_before_it_consumes_events(
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET_SMS_TOKEN", "sms-token-5e1f")  # secrets.env_prefix
    with Receiver() as receiver:
        deployment = StoreDeployment(
            kafka_bootstrap, tmp_path, [hook("crm", f"{receiver.url}/file", ["customer.*"])]
        )
        settings = deployment.settings
        stored = [
            hook("crm", f"{receiver.url}/store", ["customer.*"]),  # overrides the file's
            hook(
                "sms",
                f"{receiver.url}/sms",
                ["customer.created"],
                auth={"type": "bearer", "token": "${env:DISPATCHER_SECRET_SMS_TOKEN}"},
            ),
        ]
        assert apply_command(settings, hooks_file(tmp_path, "s.yaml", stored)) == 0
        events = [cloud_event("customer.created", {"i": i}) for i in range(5)]
        deployment.produce_events(events)
        with deployment.worker():
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 10, 30)
        assert len(receiver.received("/store")) == len(receiver.received("/sms")) == 5
        assert receiver.received("/file") == []

        capsys.readouterr()
        assert list_command(settings) == 0
        assert show_command(settings, "sms") == 0
        out = capsys.readouterr().out
        assert "1 from the hooks file, 2 from the hook store" in out
        assert "token: '***'" in out or "token: ***" in out
        with pytest.raises(ConfigError, match="no hook 'nope'"):
            delete_command(settings, "nope")


def end_offset(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offset"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()
