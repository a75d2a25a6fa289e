"""Tenant-scoped admin tokens on the real broker: a worker delivers two tenants' events to their
hooks and to a hook of every tenant; `dispatcher admin` answers acme's token with acme's hooks,
outcomes, dead letters and replays only, and another tenant's hook id with 404."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from admin_support import (
    ACME,
    ADMIN,
    GLOBEX,
    TOKEN_ENV,
    finished,
    indexed,
    running_admin,
    two_tenants,
)
from dispatch_support import cloud_event, collect_until, hook, wait_ready
from kafka_support import consume_all, wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)


def tenant_event(tenant: str, n: int) -> dict[str, Any]:
    return {**cloud_event("order.shipped", {"n": n}), "tenant": tenant}


def test_a_tenant_token_sees_and_changes_only_its_tenant(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    failing = {"/acme": Behaviour(status=422), "/globex": Behaviour(status=422)}
    with Receiver(failing) as receiver:
        deployment = two_tenants(kafka_bootstrap, tmp_path, receiver.url)
        acme_events = [tenant_event("acme", n) for n in range(2)]
        globex_events = [tenant_event("globex", n) for n in range(2)]
        deployment.produce_events(acme_events + globex_events)
        with deployment.worker() as worker:
            wait_ready(worker)
            consume_all(kafka_bootstrap, deployment.dead_letter, 4, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 8, 30)
            with running_admin(deployment.settings) as admin, admin.client(headers=ACME) as client:
                indexed(admin, 12)  # 8 results + 4 dead letters

                hooks = client.get("/api/hooks", headers=ACME).json()["hooks"]
                assert [(h["id"], h["tenant"]) for h in hooks] == [("acme-sms", "acme")]
                for hidden in ("globex-sms", "everyone"):
                    for method, path in (
                        ("GET", f"/api/hooks/{hidden}"),
                        ("GET", f"/api/hooks/{hidden}/outcomes"),
                        ("GET", f"/api/dead-letters/list?hook={hidden}"),
                        ("DELETE", f"/api/hooks/{hidden}"),
                    ):
                        answer = client.request(method, path, headers=ACME)
                        assert answer.status_code == 404, (method, path)
                    replay = client.post("/api/replays", json={"hook": hidden}, headers=ACME)
                    assert replay.status_code == 404

                outcomes = client.get("/api/hooks/acme-sms/outcomes", headers=ACME).json()
                assert sorted(o["event_id"] for o in outcomes["outcomes"]) == sorted(
                    e["id"] for e in acme_events
                )
                assert {o["tenant"] for o in outcomes["outcomes"]} == {"acme"}
                looked_up = client.get(f"/api/events/{acme_events[0]['id']}", headers=ACME).json()
                assert [o["hook_id"] for o in looked_up["outcomes"]] == ["acme-sms"]
                assert [d["hook_id"] for d in looked_up["dead_letters"]] == ["acme-sms"]
                everyone = client.get(f"/api/events/{acme_events[0]['id']}", headers=ADMIN)
                assert len(everyone.json()["outcomes"]) == 2  # acme-sms and everyone
                other = client.get(f"/api/events/{globex_events[0]['id']}", headers=ACME)
                assert other.status_code == 404
                assert client.get("/api/dead-letters", headers=ACME).json() == {
                    "total": 2,
                    "by_hook": {"acme-sms": {"http_status": 2}},
                }
                assert client.get("/api/dead-letters", headers=GLOBEX).json() == {
                    "total": 2,
                    "by_hook": {"globex-sms": {"http_status": 2}},
                }

                # a replay of every hook by acme's token takes acme's letters only
                receiver.routes["/acme"] = Behaviour()
                receiver.routes["/globex"] = Behaviour()
                done = finished(client, client.post("/api/replays", json={}, headers=ACME))
                assert done["selection"]["tenant"] == "acme"
                assert done["summary"]["delivered"] == 2
                assert len(receiver.received("/acme")) == 4  # 2 failed, 2 replayed
                assert len(receiver.received("/globex")) == 2  # never replayed
                assert [
                    r["id"] for r in client.get("/api/replays", headers=ACME).json()["replays"]
                ] == [done["id"]]
                assert client.get("/api/replays", headers=GLOBEX).json() == {"replays": []}
                assert client.get(f"/api/replays/{done['id']}", headers=GLOBEX).status_code == 404
                assert client.post("/api/replays", json={}, headers=GLOBEX).status_code == 403

                # what acme's token writes is acme's, and stays acme's
                new = hook("acme-mail", f"{receiver.url}/mail", ["order.*"])
                created = client.post("/api/hooks", json=new, headers=ACME)
                assert created.status_code == 201, created.text
                assert created.json()["tenant"] == "acme"
                wait_for(
                    lambda: getattr(worker.hooks.get("acme-mail"), "tenant", None) == "acme",
                    10,
                    message="the worker has acme-mail of tenant acme",
                )
                moved = client.put(
                    "/api/hooks/acme-mail", json={**new, "tenant": "globex"}, headers=ACME
                )
                assert moved.status_code == 422
                assert moved.json()["problems"][0]["path"] == "tenant"
                elsewhere = client.post(
                    "/api/hooks", json={**new, "id": "acme-fax", "tenant": "globex"}, headers=ACME
                )
                assert elsewhere.status_code == 422
                assert client.get("/api/hooks/acme-mail", headers=GLOBEX).status_code == 404
                taken = client.post("/api/hooks", json={**new, "id": "globex-sms"}, headers=ACME)
                assert taken.status_code == 409
                assert admin.service.hooks().get("globex-sms").tenant == "globex"  # type: ignore[union-attr]
                assert client.delete("/api/hooks/acme-mail", headers=ACME).status_code == 200


def audit_event(n: int) -> dict[str, Any]:
    return {**cloud_event("audit.logged", {"n": n}), "tenant": "acme"}


def by_event(records: list[Any], event_id: Callable[[Any], str]) -> dict[str, Any]:
    """`records` by the id of the event each is of."""
    return {event_id(record): record for record in records}


def test_what_a_hook_wrote_before_it_became_acme_stays_hidden_from_acme(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The operator's store hook `audit` (of every tenant) dead-letters an acme event, its
    endpoint's answer in the attempt record; the operator deletes it and acme creates its own
    `audit`. The workers write whose each record is, so acme's token reads and replays only
    what acme's `audit` wrote; the operator still reads everything."""
    operators_answer = b"operator endpoint: no such audit stream"
    routes = {
        "/operator": Behaviour(status=400, body=operators_answer, content_type="text/plain"),
        "/acme-audit": Behaviour(status=500),
    }
    once = {"retry": {"max_attempts": 1}}
    with Receiver(routes) as receiver:
        deployment = two_tenants(kafka_bootstrap, tmp_path, receiver.url)
        with (
            deployment.worker() as worker,
            running_admin(deployment.settings) as admin,
            admin.client(headers=ACME) as client,
        ):
            wait_ready(worker)
            operators = hook("audit", f"{receiver.url}/operator", ["audit.*"], **once)
            assert client.post("/api/hooks", json=operators, headers=ADMIN).status_code == 201
            wait_for(lambda: worker.hooks.get("audit") is not None, 10, message="audit in force")
            first = audit_event(1)
            deployment.produce_events([first])
            consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)

            assert client.delete("/api/hooks/audit", headers=ADMIN).status_code == 200
            mine = hook("audit", f"{receiver.url}/acme-audit", ["audit.*"], **once)
            created = client.post("/api/hooks", json=mine, headers=ACME)
            assert created.status_code == 201, created.text
            wait_for(
                lambda: getattr(worker.hooks.get("audit"), "tenant", None) == "acme",
                10,
                message="the worker has audit of tenant acme",
            )
            second = audit_event(2)
            deployment.produce_events([second])
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 2, timeout=60)
            indexed(admin, 4)  # two results, two dead letters
            indexer = admin.service.indexer
            assert indexer is not None
            wait_for(lambda: indexer.attempts_written >= 2, 30, message="2 attempts indexed")

            # the records say whose they are: the operator's hook's, then acme's
            letter_of = by_event(letters, lambda r: json.loads(r.value)["id"])
            assert letter_of[first["id"]].header("dispatcher.hook.tenant") is None
            assert letter_of[second["id"]].header("dispatcher.hook.tenant") == b"acme"
            results = consume_all(kafka_bootstrap, deployment.results, 2, timeout=30)
            result_of = by_event([r.json() for r in results], lambda r: r["event_id"])
            assert "hook_tenant" not in result_of[first["id"]]
            assert result_of[second["id"]]["hook_tenant"] == "acme"
            attempts = consume_all(kafka_bootstrap, deployment.attempts, 2, timeout=30)
            attempt_of = by_event([a.json() for a in attempts], lambda a: a["event_id"])
            assert attempt_of[first["id"]]["hook_tenant"] is None
            assert attempt_of[second["id"]]["hook_tenant"] == "acme"

            # acme's token: only what acme's `audit` wrote
            shown = client.get("/api/hooks/audit/attempts", headers=ACME)
            assert [a["event_id"] for a in shown.json()["attempts"]] == [second["id"]]
            assert operators_answer.decode() not in shown.text
            outcomes = client.get("/api/hooks/audit/outcomes", headers=ACME).json()["outcomes"]
            assert [o["event_id"] for o in outcomes] == [second["id"]]
            assert client.get(f"/api/events/{first['id']}", headers=ACME).status_code == 404
            listed = client.get("/api/dead-letters/list?hook=audit", headers=ACME).json()
            assert [d["event_id"] for d in listed] == [second["id"]]

            # acme's replay of `audit` sends acme's letter, never the operator's
            receiver.routes["/acme-audit"] = Behaviour()
            done = finished(
                client, client.post("/api/replays", json={"hook": "audit"}, headers=ACME)
            )
            assert (done["summary"]["selected"], done["summary"]["delivered"]) == (1, 1)
            sent = [r.headers["webhook-id"] for r in receiver.received("/acme-audit")]
            acmes_key = letter_of[second["id"]].header("dispatcher.idempotency.key").decode()
            assert sent == [acmes_key, acmes_key]  # failed, then replayed
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 3, 30
            )
            acmes = [r.json() for r in results if r.json()["event_id"] == second["id"]]
            assert [r["hook_tenant"] for r in acmes] == ["acme", "acme"]  # failed, replayed

            # the operator reads everything, the operator's endpoint's answer included
            everything = client.get(f"/api/events/{first['id']}", headers=ADMIN).json()
            assert [a["response_excerpt"] for a in everything["attempts"]] == [
                operators_answer.decode()
            ]
            assert [d["hook_tenant"] for d in everything["dead_letters"]] == [None]
