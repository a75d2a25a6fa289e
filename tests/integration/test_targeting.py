"""Targeting on the real broker: filters and tenants pick each receiver's events; a URL drawn from
the event delivers to the right path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dispatch_support import Deployment, cloud_event, hook
from kafka_support import Outgoing, consume_all, wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver

SHIPPED = "order.shipped"


def binary(event: dict[str, Any]) -> Outgoing:
    """`event` in binary mode: attributes (the tenant too) as ce_* headers, data as the value."""
    headers = [(f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data"]
    headers.append(("content-type", b"application/json"))
    return Outgoing(json.dumps(event["data"]), headers=tuple(headers))


def structured(event: dict[str, Any]) -> Outgoing:
    return Outgoing(json.dumps(event), headers=(("content-type", b"application/cloudevents+json"),))


def test_filters_and_tenants_give_each_receiver_exactly_its_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        hooks = [
            hook(
                "acme-sms",
                f"{receiver.url}/acme-sms",
                [SHIPPED],
                tenant="acme",
                filter=[
                    {"path": "data.country", "in": ["KE", "TZ"]},
                    {"path": "data.total", "gte": 100},
                ],
            ),
            hook("globex-all", f"{receiver.url}/globex", ["order.*"], tenant="globex"),
            hook("audit", f"{receiver.url}/audit", [SHIPPED]),
            hook(
                "big",
                f"{receiver.url}/big",
                ["order.*"],
                filter=[{"path": "data.total", "gt": 1000.5}],
            ),
        ]
        deployment = Deployment(kafka_bootstrap, tmp_path, hooks, partitions=2)
        cases = [  # (tenant, country, total)
            ("acme", "KE", 100),  # acme-sms (gte is inclusive), audit
            ("acme", "TZ", 99.99),  # filtered out of acme-sms by total
            ("acme", "US", 5000),  # filtered out of acme-sms by country; big
            ("acme", "KE", 1000.5),  # acme-sms; not big (gt is strict, compared exactly)
            ("globex", "KE", 150),  # globex-all, audit; never acme-sms
            ("globex", "KE", 1000.51),  # globex-all, audit, big
            (None, "KE", 500),  # audit only: no tenant hook sees it
            (None, "US", 2000),  # audit, big
        ]
        events = []
        for i, (tenant, country, total) in enumerate(cases):
            event = cloud_event(SHIPPED, {"n": i, "country": country, "total": total})
            if tenant is not None:
                event["tenant"] = tenant
            events.append(event)
        # Half in binary mode (tenant as ce_tenant), half structured.
        deployment.produce_raw(
            [binary(e) if i % 2 else structured(e) for i, e in enumerate(events)]
        )
        expected = {
            "acme-sms": [0, 3],
            "globex-all": [4, 5],
            "audit": list(range(8)),
            "big": [2, 5, 7],
        }
        pairs = sum(len(ns) for ns in expected.values())
        with deployment.worker() as worker:
            results = consume_all(kafka_bootstrap, deployment.results, pairs, timeout=90)
            wait_for(lambda: deployment.committed() == len(events), timeout=60)
            filtered = {h: worker.metrics.events_filtered.labels(h)._value.get() for h in expected}
        assert deployment.written(deployment.results) == pairs  # a filtered event has no record
        by_path = {
            "acme-sms": "/acme-sms",
            "globex-all": "/globex",
            "audit": "/audit",
            "big": "/big",
        }
        for hook_id, numbers in expected.items():
            got = sorted(json.loads(r.body)["n"] for r in receiver.received(by_path[hook_id]))
            assert got == numbers, hook_id
        documents = [r.json() for r in results]
        assert sorted((d["hook_id"], d["event_id"]) for d in documents) == sorted(
            (h, events[n]["id"]) for h, numbers in expected.items() for n in numbers
        )
        tenants = {e["id"]: e.get("tenant") for e in events}
        for document in documents:
            assert document["outcome"] == "delivered"
            assert document.get("tenant") == tenants[document["event_id"]]
        # Filtered: acme-sms failed its filter on events 1 and 2 (acme events of its type only);
        # big on every event of another tenant-free reach with total <= 1000.5.
        assert filtered == {"acme-sms": 2, "globex-all": 0, "audit": 0, "big": 5}


def test_a_url_with_placeholders_delivers_to_the_path_drawn_from_the_event(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "status",
                    f"{receiver.url}/orders/{{data.order_id}}/status?ref={{id}}&v=1",
                    [SHIPPED],
                    tenant="acme",
                    headers={"X-Ref": "ref-{data.ref}", "X-Tenant": "{tenant}"},
                )
            ],
        )
        good = cloud_event(SHIPPED, {"order_id": "A/7 ü?#", "ref": "r 1"}, event_id="ev-1")
        missing = cloud_event(SHIPPED, {"other": 1}, event_id="ev-2")
        for event in (good, missing):
            event["tenant"] = "acme"
        deployment.produce_events([good, missing])
        with deployment.worker():
            results = consume_all(kafka_bootstrap, deployment.results, 2, timeout=60)
            [letter] = consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
        [request] = receiver.received()
        assert request.path == f"/orders/{quote('A/7 ü?#', safe='')}/status?ref=ev-1&v=1"
        assert request.headers["x-ref"] == "ref-r 1"
        assert request.headers["x-tenant"] == "acme"
        outcome = {r.json()["event_id"]: r.json() for r in results}
        assert outcome["ev-1"]["outcome"] == "delivered"
        assert outcome["ev-1"]["idempotency_key"] == request.headers["webhook-id"]
        assert (outcome["ev-2"]["outcome"], outcome["ev-2"]["error_kind"]) == (
            "dead_lettered",
            "render",
        )
        assert "placeholder {data.order_id} is missing" in outcome["ev-2"]["error"]
        assert outcome["ev-2"]["tenant"] == "acme"
        assert {r["hook_tenant"] for r in outcome.values()} == {"acme"}  # whose records
        assert letter.header("dispatcher.error.kind") == b"render"
        assert letter.header("dispatcher.tenant") == b"acme"
        assert letter.header("dispatcher.hook.tenant") == b"acme"
        assert json.loads(letter.value or b"{}")["id"] == "ev-2"


def test_a_filter_and_a_header_on_an_extension_deliver_only_that_regions_events_with_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The producer's extension `region`, structured (`"region": "eu"`) and binary
    (`ce_region: eu`): the hook filtered on `extensions.region` gets the eu events only, each
    with its `X-Region` header from the event."""
    with Receiver() as receiver:
        erp = hook(
            "erp-eu",
            f"{receiver.url}/erp",
            ["order.placed"],
            filter=[{"path": "extensions.region", "equals": "eu"}],
            headers={"X-Region": "{extensions.region}"},
        )
        deployment = Deployment(kafka_bootstrap, tmp_path, [erp])
        events = []
        for n, region in enumerate(["eu", "us", "eu", "us"]):
            event = cloud_event("order.placed", {"n": n}, event_id=f"ev-{n}")
            event["region"] = region
            events.append(event)
        deployment.produce_raw(
            [binary(e) if n >= 2 else structured(e) for n, e in enumerate(events)]
        )
        with deployment.worker() as worker:
            results = consume_all(kafka_bootstrap, deployment.results, 2, timeout=60)
            wait_for(lambda: deployment.committed() == len(events), timeout=60)
            filtered = worker.metrics.events_filtered.labels("erp-eu")._value.get()
        assert sorted(r.json()["event_id"] for r in results) == ["ev-0", "ev-2"]
        assert {r.json()["outcome"] for r in results} == {"delivered"}
        received = receiver.received("/erp")
        assert sorted(json.loads(r.body)["n"] for r in received) == [0, 2]
        assert [r.headers["x-region"] for r in received] == ["eu", "eu"]
        assert filtered == 2
        assert deployment.written(deployment.results) == 2  # a filtered event has no record


def dispatcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_tenant_commands_produce_list_and_replay_one_tenants_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/erp": Behaviour(status=400)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("erp", f"{receiver.url}/erp", ["invoice.*"]),
                hook("acme-crm", f"{receiver.url}/crm", ["invoice.*"], tenant="acme"),
            ],
        )
        config = str(deployment.config_path)
        for tenant, mode in (("acme", []), ("globex", ["--binary"]), ("acme", ["--binary"])):
            done = dispatcher(
                "produce", "--config", config, "--type", "invoice.sent", "--data", '{"n": 1}',
                "--tenant", tenant, *mode,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        with deployment.worker():
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
            wait_for(lambda: deployment.committed() == 3, timeout=60)
        assert sorted(letter.header("dispatcher.tenant") or b"" for letter in letters) == [
            b"acme",
            b"acme",
            b"globex",
        ]
        assert len(receiver.received("/crm")) == 2  # acme's hook: acme's two events only

        listed = dispatcher("hooks", "list", "--tenant", "acme", "--config", config)
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.split("\n\n")[0].splitlines()[1:]  # the table, below its header
        assert [row.split()[:2] for row in rows] == [["acme-crm", "acme"]]

        receiver.routes["/erp"] = Behaviour()  # the ERP is fixed
        replayed = dispatcher("replay", "--tenant", "acme", "--config", config)
        assert replayed.returncode == 0, replayed.stderr
        assert "delivered 2, failed again 0, skipped 0" in replayed.stdout
        again = receiver.received("/erp")[3:]
        assert len(again) == 2
        acme_keys = {
            (letter.header("dispatcher.idempotency.key") or b"").decode()
            for letter in letters
            if letter.header("dispatcher.tenant") == b"acme"
        }
        assert {r.headers["webhook-id"] for r in again} == acme_keys
