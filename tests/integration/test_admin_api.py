"""The admin API of `dispatcher admin` beside a worker: hooks in the store, the test endpoint,
outcomes, event look-up, dead letters and replays answered from the index, roles and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from admin_support import (
    ADMIN,
    TOKEN_ENV,
    VIEWER,
    AdminDeployment,
    finished,
    indexed,
    running_admin,
)
from dispatch_support import cloud_event, collect_until, hook, wait_ready
from kafka_support import consume_all, wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DUGAA_TEST_SMS_KEY", "sms-key-value-9c1e")
    monkeypatch.setenv("DUGAA_TEST_SESSION", "s-4411")


def test_hooks_are_managed_through_the_api_and_writes_need_the_admin_role(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap, tmp_path, [hook("audit", f"{receiver.url}/audit", ["x.*"])]
        )
        sms: dict[str, Any] = hook(
            "sms",
            f"{receiver.url}/sms",
            ["order.*"],
            headers={"X-Tenant": "acme", "X-Session": "${env:DUGAA_TEST_SESSION}"},
            auth={"type": "bearer", "token": "${env:DUGAA_TEST_SMS_KEY}"},
            fields=[{"name": "to", "from": "data.phone", "required": True}],
        )
        with (
            deployment.worker() as worker,
            running_admin(deployment.settings) as admin,
            admin.client() as client,
        ):
            assert client.post("/api/hooks", json=sms).status_code == 401
            wrong = {"Authorization": "Bearer nope-nope-nope-nope-nope"}
            assert client.post("/api/hooks", json=sms, headers=wrong).status_code == 401
            assert client.post("/api/hooks", json=sms, headers=VIEWER).status_code == 403
            assert client.delete("/api/hooks/audit").status_code == 401
            assert client.get("/api/hooks").status_code == 401
            assert admin.service.hooks().get("sms") is None

            created = client.post("/api/hooks", json=sms, headers=ADMIN)
            assert created.status_code == 201, created.text
            assert created.json()["source"] == "store"
            assert created.json()["auth"] == {"type": "bearer", "token": "***"}
            assert "sms-key-value" not in created.text
            wait_for(lambda: worker.hooks.get("sms") is not None, 10, message="sms in force")
            assert client.post("/api/hooks", json=sms, headers=ADMIN).status_code == 409

            listed = client.get("/api/hooks", headers=VIEWER).json()["hooks"]
            assert {(h["id"], h["source"]) for h in listed} == {
                ("audit", "hooks file"),
                ("sms", "store"),
            }
            invalid = {**sms, "url": f"{receiver.url}/v2", "format": "yaml", "timeout": "soon"}
            refused = client.put("/api/hooks/sms", json=invalid, headers=ADMIN)
            assert refused.status_code == 422
            assert {p["path"] for p in refused.json()["problems"]} == {"format", "timeout"}
            assert client.get("/api/hooks/sms", headers=VIEWER).json()["url"] == sms["url"]
            literal = {**sms, "auth": {"type": "bearer", "token": "literal-secret"}}
            refused = client.put("/api/hooks/sms", json=literal, headers=ADMIN)
            assert refused.status_code == 422
            assert "literal-secret" not in refused.text
            literal_header = {**sms, "headers": {"X-Tenant": "acme", "X-Session": "s-4411"}}
            refused = client.put("/api/hooks/sms", json=literal_header, headers=ADMIN)
            assert refused.status_code == 422  # a credential-like header takes a reference
            assert "s-4411" not in refused.text

            # the definition as shown (masked) and sent back with one change keeps its secret
            shown = client.get("/api/hooks/sms", headers=ADMIN).json()
            assert shown.pop("source") == "store"
            shown["source"] = "store"  # what a GET shows may go back as it is
            updated = client.put(
                "/api/hooks/sms", json={**shown, "url": f"{receiver.url}/v2"}, headers=ADMIN
            )
            assert updated.status_code == 200, updated.text
            wait_for(
                lambda: getattr(worker.hooks.get("sms"), "url", "") == f"{receiver.url}/v2",
                10,
                message="the worker has the change",
            )

            event = cloud_event("order.shipped", {"phone": "+254700000001"})
            viewer_try = client.post("/api/hooks/sms/test", json={"event": event}, headers=VIEWER)
            assert viewer_try.status_code == 403
            assert client.post("/api/hooks/sms/test", json={"event": event}).status_code == 401
            tried = client.post("/api/hooks/sms/test", json={"event": event}, headers=ADMIN)
            assert tried.status_code == 200
            request = tried.json()["request"]
            assert request["body"] == '{"to":"+254700000001"}'
            assert request["headers"]["webhook-id"].startswith("msg_")
            assert request["headers"]["x-session"] == "***"
            assert request["headers"]["x-tenant"] == "acme"
            assert "verdict" not in tried.json()
            assert receiver.received() == []
            sent = client.post(
                "/api/hooks/sms/test", json={"event": event, "send": True}, headers=ADMIN
            )
            assert sent.json()["verdict"]["ok"] is True
            assert sent.json()["verdict"]["status"] == 200
            (received,) = receiver.received("/v2")
            assert received.headers["authorization"] == "Bearer sms-key-value-9c1e"
            assert "sms-key-value" not in sent.text
            empty = client.post("/api/hooks/sms/test", json={"event": {"id": "1"}}, headers=ADMIN)
            assert empty.status_code == 422

            assert client.delete("/api/hooks/audit", headers=ADMIN).status_code == 409
            assert client.delete("/api/hooks/sms", headers=VIEWER).status_code == 403
            assert client.delete("/api/hooks/sms", headers=ADMIN).status_code == 200
            wait_for(lambda: worker.hooks.get("sms") is None, 10, message="sms gone")
            assert client.get("/api/hooks/sms", headers=ADMIN).status_code == 404
            assert client.delete("/api/hooks/sms", headers=ADMIN).status_code == 404
            assert client.get("/api/nowhere", headers=ADMIN).status_code == 404
            assert client.patch("/api/hooks/audit", headers=ADMIN).status_code == 405
            bad = client.post(
                "/api/hooks", content=b"{not json", headers={**ADMIN, "content-type": "x"}
            )
            assert bad.status_code == 400
            assert bad.json() == {"error": "the body is not JSON"}


def test_outcomes_events_dead_letters_and_replays_come_from_the_index(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/tax": Behaviour(status=422)}) as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("tax", f"{receiver.url}/tax", ["order.paid"], retry={"max_attempts": 1}),
                hook("crm", f"{receiver.url}/crm", ["order.paid"]),
            ],
        )
        events = [cloud_event("order.paid", {"n": i}) for i in range(3)]
        deployment.produce_events(events)
        with deployment.worker() as worker:
            wait_ready(worker)
            consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 6, 30)
            with (
                running_admin(deployment.settings) as admin,
                admin.client(headers=VIEWER) as client,
            ):
                indexed(admin, 9)  # 6 results + 3 dead letters
                outcomes = client.get("/api/hooks/crm/outcomes", params={"limit": 2}).json()
                assert len(outcomes["outcomes"]) == 2
                assert {o["outcome"] for o in outcomes["outcomes"]} == {"delivered"}
                assert {o["event_id"] for o in outcomes["outcomes"]} <= {e["id"] for e in events}
                failed = client.get(
                    "/api/hooks/tax/outcomes", params={"status": "dead_lettered", "since": "1h"}
                ).json()["outcomes"]
                assert len(failed) == 3
                assert {o["error_kind"] for o in failed} == {"http_status"}
                none = client.get("/api/hooks/tax/outcomes", params={"status": "delivered"})
                assert none.json()["outcomes"] == []
                future = client.get("/api/hooks/crm/outcomes", params={"since": "2999-01-01"})
                assert future.json()["outcomes"] == []

                looked_up = client.get(f"/api/events/{events[0]['id']}").json()
                assert {(o["hook_id"], o["outcome"]) for o in looked_up["outcomes"]} == {
                    ("crm", "delivered"),
                    ("tax", "dead_lettered"),
                }
                (letter,) = looked_up["dead_letters"]
                assert letter["hook_id"] == "tax"
                assert letter["event_id"] == events[0]["id"]
                assert letter["http_status"] == 422
                assert client.get("/api/events/no-such-event").status_code == 404

                counts = client.get("/api/dead-letters").json()
                assert counts == {"total": 3, "by_hook": {"tax": {"http_status": 3}}}
                assert client.get("/api/dead-letters", params={"since": "1h"}).json() == counts
                later = client.get("/api/dead-letters", params={"since": "2999-01-01T00:00:00Z"})
                assert later.json() == {"total": 0, "by_hook": {}}
                assert client.get("/api/dead-letters", params={"since": "soon"}).status_code == 422

                selection = {"hook": "tax", "since": "1h", "error_kind": ["http_status"]}
                assert client.post("/api/replays", json=selection).status_code == 403
                assert (
                    client.post(
                        "/api/replays", json=selection, headers={"Authorization": ""}
                    ).status_code
                    == 401
                )
                bad = client.post("/api/replays", json={"error_kind": "nonsense"}, headers=ADMIN)
                assert bad.status_code == 422
                dry = finished(
                    client,
                    client.post("/api/replays", json={**selection, "dry_run": True}, headers=ADMIN),
                )
                assert dry["summary"]["selected"] == 3
                assert [row["action"] for row in dry["plan"]] == ["send"] * 3
                assert len(receiver.received("/tax")) == 3

                receiver.routes["/tax"] = Behaviour()
                done = finished(client, client.post("/api/replays", json=selection, headers=ADMIN))
                assert done["summary"]["delivered"] == 3
                again = finished(client, client.post("/api/replays", json=selection, headers=ADMIN))
                assert again["summary"]["delivered"] == 0
                assert again["summary"]["skipped"] == 3
                assert len(client.get("/api/replays").json()["replays"]) == 3
                # the replayed deliveries reach the index as outcomes of the same events
                indexed(admin, 12)
                replayed = client.get(f"/api/events/{events[0]['id']}").json()["outcomes"]
                assert ("tax", "delivered") in {(o["hook_id"], o["outcome"]) for o in replayed}
        replayed_requests = receiver.received("/tax")[3:]
        firsts = receiver.received("/tax")[:3]
        assert sorted(r.headers["webhook-id"] for r in replayed_requests) == sorted(
            r.headers["webhook-id"] for r in firsts
        )


def test_an_overlapping_replay_is_refused_naming_the_running_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/slow": Behaviour(status=500)}) as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap,
            tmp_path,
            [hook("slow", f"{receiver.url}/slow", ["x"], retry={"max_attempts": 1})],
        )
        deployment.produce_events([cloud_event("x", {"n": i}) for i in range(3)])
        with deployment.worker() as worker:
            wait_ready(worker)
            consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
        receiver.routes["/slow"] = Behaviour(delay=3.0)
        with running_admin(deployment.settings) as admin, admin.client(headers=ADMIN) as client:
            first = client.post("/api/replays", json={"hook": "slow", "rate": 1})
            assert first.status_code == 202, first.text
            second = client.post("/api/replays", json={"hook": "slow", "since": "1h"})
            assert second.status_code == 409
            assert first.json()["id"] in second.json()["error"]
            other = client.post("/api/replays", json={"hook": "another"})
            assert other.status_code == 202
            dry = client.post("/api/replays", json={"hook": "slow", "dry_run": True})
            assert dry.status_code == 202
            finished(client, first)


def test_the_index_goes_on_from_its_stored_offsets_after_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap, tmp_path, [hook("crm", f"{receiver.url}/crm", ["x"])]
        )
        results = deployment.results
        deployment.produce_events([cloud_event("x", {"n": i}) for i in range(3)])
        with deployment.worker() as worker:
            wait_ready(worker)
            collect_until(kafka_bootstrap, results, lambda rs: len(rs) >= 3, 60)
            with running_admin(deployment.settings) as admin:
                indexed(admin, 3)
            deployment.produce_events([cloud_event("x", {"n": i}) for i in range(3, 5)])
            collect_until(kafka_bootstrap, results, lambda rs: len(rs) >= 5, 60)
        with running_admin(deployment.settings) as admin, admin.client(headers=VIEWER) as client:
            index = admin.service.index
            wait_for(lambda: sum(index.positions(results).values()) == 5, 60, message="caught up")
            assert admin.service.indexer is not None
            assert admin.service.indexer.written == 2  # only what came after the restart
            outcomes = client.get("/api/hooks/crm/outcomes", params={"limit": 10}).json()
            assert len(outcomes["outcomes"]) == 5
