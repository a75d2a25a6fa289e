"""The hook store on the real broker: hot apply and delete in a running worker, refusals, and
stored hooks the workers cannot use, as the command line shows them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from admin_support import ACME, TOKEN_ENV, AdminDeployment, indexed, running_admin
from dispatch_support import Deployment, cloud_event, collect_until, hook, wait_ready
from kafka_support import Outgoing, produce, wait_for

from dispatcher.cli.hooks import apply_command, delete_command, list_command, show_command
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.errors import ConfigError
from dispatcher.kafka.store import hooks_in_force
from dispatcher.ops.replay.run import ReplayOptions, run_replay
from dispatcher.ops.replay.selection import Selection


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
            unusable = worker.metrics.registry.get_sample_value(
                "dispatcher_hook_unusable", {"hook": "crm"}
            )
        assert crm is not None
        assert crm.unusable is not None
        assert unusable == 1.0
        (result,) = [r.json() for r in results]
        assert (result["event_id"], result["hook_id"]) == (event["id"], "crm")
        assert (result["outcome"], result["error_kind"]) == ("dead_lettered", "config")
        assert receiver.received() == []


def test_a_pair_in_a_retry_tier_when_its_hook_is_disabled_is_dead_lettered_and_then_replayed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Disabling a hook (the runbook's advice for a long outage) drops none of the pairs that
    wait in its retry tiers: each ends as a `config` result and dead letter, no request made,
    which a replay re-delivers with its webhook-id once the hook is enabled again."""
    with Receiver({"/erp": Behaviour(status=503)}) as receiver:
        deployment = StoreDeployment(
            kafka_bootstrap, tmp_path, [], retry=("1s",), extra={"local_retries": 0}
        )
        settings = deployment.settings
        erp = hook(
            "erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 50, "max_age": "1h"}
        )
        assert apply_command(settings, hooks_file(tmp_path, "on.yaml", [erp])) == 0
        event = cloud_event("order.paid", {"n": 1})
        deployment.produce_events([event], keys=["order-1"])
        with deployment.worker() as worker:
            collect_until(kafka_bootstrap, f"{deployment.retry_prefix}.1s", lambda rs: rs, 30)
            off = hooks_file(tmp_path, "off.yaml", [{**erp, "enabled": False}])
            assert apply_command(settings, off) == 0
            wait_for(lambda: not worker.hooks.get("erp").enabled, 10, message="erp disabled")
            results = collect_until(kafka_bootstrap, deployment.results, lambda rs: rs, 30)
            letters = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: rs, 30)
        (result,) = [r.json() for r in results]
        (letter,) = letters
        sent = receiver.received("/erp")
        key = sent[0].headers["webhook-id"]
        assert (result["event_id"], result["hook_id"]) == (event["id"], "erp")
        assert (result["outcome"], result["error_kind"]) == ("dead_lettered", "config")
        assert result["error"] == (
            "no request made: hook erp was disabled while the pair waited in a retry tier"
        )
        assert (result["idempotency_key"], result["attempts"]) == (key, len(sent))
        assert (letter.key, json.loads(letter.value or b"")) == (b"order-1", event)
        assert letter.header("dispatcher.error.kind") == b"config"
        assert letter.header("dispatcher.idempotency.key") == key.encode()
        assert letter.header("dispatcher.source.topic") == deployment.events.encode()

        receiver.routes["/erp"] = Behaviour()  # the outage is over, and the hook enabled again
        assert apply_command(settings, hooks_file(tmp_path, "on.yaml", [erp])) == 0
        selection = Selection(hook="erp", error_kinds=frozenset({"config"}))
        _, replayed = run_replay(settings, hooks_in_force(settings), ReplayOptions(selection))
        assert (replayed.selected, replayed.delivered) == (1, 1)
        assert [r.headers["webhook-id"] for r in receiver.received("/erp")[len(sent) :]] == [key]


def test_a_pair_in_a_retry_tier_when_its_hook_is_deleted_keeps_the_hooks_tenant(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acme's hook is deleted while a pair of it waits in a retry tier: its `config` dead
    letter and result name acme as the hook's tenant, carried by the tier record (the hook is
    gone, so nothing else knows it). Without it the letter was the operator's only: once acme
    has its hook again, acme's admin lists and replays it."""
    for name, token in TOKEN_ENV.items():
        monkeypatch.setenv(name, token)
    with Receiver({"/erp": Behaviour(status=503)}) as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap, tmp_path, [], retry=("1s",), extra={"local_retries": 0}
        )
        settings = deployment.settings
        erp = hook(
            "erp",
            f"{receiver.url}/erp",
            ["order.*"],
            tenant="acme",
            retry={"max_attempts": 50, "max_age": "1h"},
        )
        assert apply_command(settings, hooks_file(tmp_path, "on.yaml", [erp])) == 0
        event = {**cloud_event("order.paid", {"n": 1}), "tenant": "acme"}
        deployment.produce_events([event])
        with deployment.worker() as worker:
            collect_until(kafka_bootstrap, f"{deployment.retry_prefix}.1s", lambda rs: rs, 30)
            assert delete_command(settings, "erp") == 0
            wait_for(lambda: worker.hooks.get("erp") is None, 10, message="erp deleted")
            (result,) = collect_until(kafka_bootstrap, deployment.results, lambda rs: rs, 30)
            (letter,) = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: rs, 30)
        assert (result.json()["error_kind"], result.json()["hook_tenant"]) == ("config", "acme")
        assert letter.header("dispatcher.error.kind") == b"config"
        assert letter.header("dispatcher.hook.tenant") == b"acme"

        assert apply_command(settings, hooks_file(tmp_path, "on.yaml", [erp])) == 0
        with running_admin(settings) as admin, admin.client(headers=ACME) as client:
            indexed(admin, 2)  # the result and the dead letter
            listed = client.get("/api/dead-letters/list?hook=erp").json()
    assert [d["event_id"] for d in listed] == [event["id"]]


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
        # the file's crm is not in force: the stored one is
        assert (
            "0 from the hooks file, 2 from the hook store (1 in place of the hooks file's)" in out
        )
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


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m dispatcher ARGS --config CONFIG` with `env` its only DISPATCHER_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args, "--config", str(config)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hooks_list_and_show_name_a_stored_hook_the_workers_cannot_use_and_why(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Stored hooks that do not load where the command runs (a variable not set; a key of the
    wrong size) are listed and shown as unusable with the problem, never a secret's value;
    `hooks show` of one exits 1, and `hooks delete` removes one."""
    short_key = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")  # A256GCM: 32
    env = {"DISPATCHER_SECRET_VAULT_KEY": short_key}  # DISPATCHER_SECRET_ERP_TOKEN: not set
    deployment = StoreDeployment(kafka_bootstrap, tmp_path, [])
    erp = hook(
        "erp",
        "https://erp.example.test/in",
        ["order.*"],
        tenant="acme",
        auth={"type": "bearer", "token": "${env:DISPATCHER_SECRET_ERP_TOKEN}"},
    )
    vault = hook(
        "vault",
        "https://vault.example.test/in",
        ["order.paid"],
        encryption={"algorithm": "A256GCM", "key": "${env:DISPATCHER_SECRET_VAULT_KEY}"},
    )
    crm = hook("crm", "https://crm.example.test/in", ["customer.*"])
    produce(
        kafka_bootstrap,
        deployment.settings.topics.hooks,
        [Outgoing(json.dumps(h), key=h["id"]) for h in (erp, vault, crm)],
    )
    config = deployment.config_path

    listed = cli(config, env, "hooks", "list")
    assert listed.returncode == 0, listed.stderr
    table, notes, count = listed.stdout.split("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()}
    assert rows["ID"][:4] == ["ID", "TENANT", "ENABLED", "HEALTH"]
    assert rows["erp"] == ["erp", "acme", "yes", "unusable", "order.*", "-", "-", "-", "-"]
    assert rows["vault"][3] == "unusable"
    assert rows["crm"][3] == "-"
    assert count == "0 from the hooks file, 3 from the hook store\n"
    why = notes.splitlines()
    assert [line.split()[0] for line in why] == ["erp", "vault"]
    acme = cli(config, env, "hooks", "list", "--tenant", "acme").stdout
    assert acme.endswith("\n\n0 from the hooks file, 1 from the hook store\n")  # erp alone
    assert "environment variable DISPATCHER_SECRET_ERP_TOKEN is not set" in why[0]
    assert "A256GCM needs a 32-byte key" in why[1]

    shown = {name: cli(config, env, "hooks", "show", name) for name in ("erp", "vault", "crm")}
    assert shown["crm"].returncode == 0, shown["crm"].stderr
    for name in ("erp", "vault"):
        assert shown[name].returncode == 1, shown[name].stderr
        assert shown[name].stdout.startswith("# unusable: its events are dead-lettered")
        assert f"\nid: {name}\n" in shown[name].stdout
        assert shown[name].stderr.startswith(f"error: hook {name} is unusable, its events are")
    assert "DISPATCHER_SECRET_ERP_TOKEN is not set" in shown["erp"].stderr
    assert "url:" not in shown["erp"].stdout  # a stand-in: nothing made up
    assert "A256GCM needs a 32-byte key" in shown["vault"].stderr
    printed = [listed.stdout, listed.stderr, *(s.stdout + s.stderr for s in shown.values())]
    assert not [text for text in printed if short_key in text]

    deleted = cli(config, env, "hooks", "delete", "erp")
    assert deleted.returncode == 0, deleted.stderr  # once "no hook 'erp' in the hook store"
    remaining = cli(config, env, "hooks", "list").stdout
    assert "0 from the hooks file, 2 from the hook store" in remaining
    assert "erp" not in remaining


def test_hooks_test_tries_the_hook_in_force_a_stored_one_too(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`hooks test` looked in the hooks file only: a hook kept in the store (applied, or made
    in the console) was "no hook", and one stored over the file's was tried as the file has it,
    not as the workers send it."""
    with Receiver() as receiver:
        deployment = StoreDeployment(
            kafka_bootstrap, tmp_path, [hook("crm", f"{receiver.url}/file", ["customer.*"])]
        )
        config = deployment.config_path
        stored = [
            hook("crm", f"{receiver.url}/store", ["customer.*"]),  # over the file's
            hook("sms", f"{receiver.url}/sms", ["customer.created"]),  # in the store only
        ]
        applied = cli(config, {}, "hooks", "apply", str(hooks_file(tmp_path, "s.yaml", stored)))
        assert applied.returncode == 0, applied.stderr
        event = tmp_path / "event.json"
        event.write_text(json.dumps(cloud_event("customer.created", {"n": 1})))

        tried = {
            hook_id: cli(config, {}, "hooks", "test", hook_id, "--event", str(event), "--send")
            for hook_id in ("crm", "sms")
        }
        for hook_id, done in tried.items():
            assert done.returncode == 0, (hook_id, done.stderr)
            assert "verdict: delivered" in done.stdout
        assert f"POST {receiver.url}/store\n" in tried["crm"].stdout
        assert len(receiver.received("/store")) == len(receiver.received("/sms")) == 1
        assert receiver.received("/file") == []

    missing = cli(config, {}, "hooks", "test", "nope", "--event", str(event))
    assert missing.returncode == 1
    assert missing.stderr == (
        f"error: no hook 'nope' in the hooks file {deployment.hooks_path} or the hook store"
        f" {deployment.settings.topics.hooks}\n"
    )
