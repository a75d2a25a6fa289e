"""Tenant-scoped admin tokens on the real broker: a worker delivers two tenants' events to their
hooks and to a hook of every tenant; `dispatcher admin` answers acme's token with acme's hooks,
outcomes, dead letters and replays only, and another tenant's hook id with 404."""

from __future__ import annotations

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
