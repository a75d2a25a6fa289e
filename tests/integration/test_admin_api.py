"""The admin API of a running worker: hooks in the store, the test endpoint, outcomes, dead letters,
replays, the bearer token, and the OpenAPI document it serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dispatch_support import Deployment, cloud_event, collect_until, hook, wait_ready
from kafka_support import consume_all, wait_for
from openapi_spec_validator import validate

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.engine.worker import Worker

TOKEN = "admin-test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ApiDeployment(Deployment):
    """A deployment with a hook store of its own and, unless `token` is None, an admin token."""

    token: str | None = TOKEN

    def write(self) -> None:
        super().write()
        config = yaml.safe_load(self.config_path.read_text())
        config["topics"]["hooks"] = f"store-{self.group}"
        config["secrets"] = {"env_prefix": "DUGAA_TEST_"}  # what stored hooks may refer to
        if self.token is not None:
            config["admin"] = {"token": "${env:DUGAA_TEST_ADMIN_TOKEN}"}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def api(worker: Worker) -> httpx.Client:
    wait_for(lambda: worker.admin is not None, 30, message="the admin server")
    assert worker.admin is not None
    return httpx.Client(base_url=f"http://127.0.0.1:{worker.admin.port}", timeout=30)


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUGAA_TEST_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("DUGAA_TEST_SMS_KEY", "sms-key-value-9c1e")
    monkeypatch.setenv("DUGAA_TEST_SESSION", "s-4411")


def test_hooks_are_managed_through_the_api_and_writes_need_the_token(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = ApiDeployment(
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
        with deployment.worker() as worker, api(worker) as client:
            assert client.post("/api/hooks", json=sms).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert client.post("/api/hooks", json=sms, headers=wrong).status_code == 401
            assert client.delete("/api/hooks/audit").status_code == 401
            assert worker.hooks.get("sms") is None

            created = client.post("/api/hooks", json=sms, headers=AUTH)
            assert created.status_code == 201, created.text
            assert created.json()["source"] == "store"
            assert created.json()["auth"] == {"type": "bearer", "token": "***"}
            assert "sms-key-value" not in created.text
            assert worker.hooks.get("sms") is not None  # in force when the call returns
            assert client.post("/api/hooks", json=sms, headers=AUTH).status_code == 409

            listed = client.get("/api/hooks").json()["hooks"]
            assert {(h["id"], h["source"]) for h in listed} == {
                ("audit", "hooks file"),
                ("sms", "store"),
            }
            invalid = {**sms, "url": f"{receiver.url}/v2", "format": "yaml", "timeout": "soon"}
            refused = client.put("/api/hooks/sms", json=invalid, headers=AUTH)
            assert refused.status_code == 422
            paths = {p["path"] for p in refused.json()["problems"]}
            assert paths == {"format", "timeout"}
            assert client.get("/api/hooks/sms").json()["url"] == f"{receiver.url}/sms"
            literal = {**sms, "auth": {"type": "bearer", "token": "literal-secret"}}
            refused = client.put("/api/hooks/sms", json=literal, headers=AUTH)
            assert refused.status_code == 422
            assert "literal-secret" not in refused.text
            literal_header = {**sms, "headers": {"X-Tenant": "acme", "X-Session": "s-4411"}}
            refused = client.put("/api/hooks/sms", json=literal_header, headers=AUTH)
            assert refused.status_code == 422  # a credential-like header takes a reference
            assert "s-4411" not in refused.text

            updated = client.put(
                "/api/hooks/sms", json={**sms, "url": f"{receiver.url}/v2"}, headers=AUTH
            )
            assert updated.status_code == 200, updated.text
            hook_now = worker.hooks.get("sms")
            assert hook_now is not None
            assert hook_now.url == f"{receiver.url}/v2"

            event = cloud_event("order.shipped", {"phone": "+254700000001"})
            shown = client.post("/api/hooks/sms/test", json={"event": event})
            assert shown.status_code == 200
            request = shown.json()["request"]
            assert request["body"] == '{"to":"+254700000001"}'
            assert request["headers"]["webhook-id"].startswith("msg_")
            assert request["headers"]["x-session"] == "***"
            assert request["headers"]["x-tenant"] == "acme"
            assert "verdict" not in shown.json()
            assert receiver.received() == []
            to_send = {"event": event, "send": True}
            assert client.post("/api/hooks/sms/test", json=to_send).status_code == 401
            sent = client.post("/api/hooks/sms/test", json=to_send, headers=AUTH)
            assert sent.json()["verdict"]["ok"] is True
            assert sent.json()["verdict"]["status"] == 200
            (received,) = receiver.received("/v2")
            assert received.headers["authorization"] == "Bearer sms-key-value-9c1e"
            assert "sms-key-value" not in sent.text
            empty = client.post("/api/hooks/sms/test", json={"event": {"id": "1"}})
            assert empty.status_code == 422

            assert client.delete("/api/hooks/audit", headers=AUTH).status_code == 409
            assert client.delete("/api/hooks/sms", headers=AUTH).status_code == 200
            assert worker.hooks.get("sms") is None
            assert client.get("/api/hooks/sms").status_code == 404
            assert client.delete("/api/hooks/sms", headers=AUTH).status_code == 404
            assert client.get("/api/nowhere").status_code == 404
            assert client.patch("/api/hooks/audit").status_code == 405
            bad = client.post(
                "/api/hooks", content=b"{not json", headers={**AUTH, "content-type": "x"}
            )
            assert bad.status_code == 400

            document = client.get("/openapi.json").json()
        validate(document)
        assert document["openapi"] == "3.1.0"


def test_outcomes_dead_letters_and_a_replay_through_the_api(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/tax": Behaviour(status=422)}) as receiver:
        deployment = ApiDeployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("tax", f"{receiver.url}/tax", ["order.paid"], retry={"max_attempts": 1}),
                hook("crm", f"{receiver.url}/crm", ["order.paid"]),
            ],
        )
        events = [cloud_event("order.paid", {"n": i}) for i in range(3)]
        deployment.produce_events(events)
        with deployment.worker() as worker, api(worker) as client:
            wait_ready(worker)
            consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 6, 30)

            outcomes = client.get("/api/hooks/crm/outcomes", params={"limit": 2}).json()
            assert len(outcomes["outcomes"]) == 2
            assert {o["outcome"] for o in outcomes["outcomes"]} == {"delivered"}
            assert {o["event_id"] for o in outcomes["outcomes"]} <= {e["id"] for e in events}
            counts = client.get("/api/dead-letters").json()
            assert counts == {"total": 3, "by_hook": {"tax": {"http_status": 3}}}
            assert client.get("/api/dead-letters", params={"since": "1h"}).json() == counts
            later = client.get("/api/dead-letters", params={"since": "2999-01-01T00:00:00Z"})
            assert later.json() == {"total": 0, "by_hook": {}}
            assert client.get("/api/dead-letters", params={"since": "soon"}).status_code == 422

            selection = {"hook": "tax", "since": "1h", "error_kind": ["http_status"]}
            assert client.post("/api/replays", json=selection).status_code == 401
            bad = client.post("/api/replays", json={"error_kind": "nonsense"}, headers=AUTH)
            assert bad.status_code == 422
            dry = finished(
                client,
                client.post("/api/replays", json={**selection, "dry_run": True}, headers=AUTH),
            )
            assert dry["summary"]["selected"] == 3
            assert [row["action"] for row in dry["plan"]] == ["send"] * 3
            assert len(receiver.received("/tax")) == 3

            receiver.routes["/tax"] = Behaviour()
            done = finished(client, client.post("/api/replays", json=selection, headers=AUTH))
            assert done["summary"]["delivered"] == 3
            again = finished(client, client.post("/api/replays", json=selection, headers=AUTH))
            assert again["summary"]["delivered"] == 0
            assert again["summary"]["skipped"] == 3
            assert len(client.get("/api/replays").json()["replays"]) == 3
        replayed = receiver.received("/tax")[3:]
        firsts = receiver.received("/tax")[:3]
        assert sorted(r.headers["webhook-id"] for r in replayed) == sorted(
            r.headers["webhook-id"] for r in firsts
        )


def test_without_a_token_the_api_is_read_only(kafka_bootstrap: str, tmp_path: Path) -> None:
    class ReadOnly(ApiDeployment):
        token = None

    deployment = ReadOnly(kafka_bootstrap, tmp_path, [hook("a", "http://127.0.0.1:9/a", ["x"])])
    with deployment.worker() as worker, api(worker) as client:
        assert client.get("/api/hooks/a").status_code == 200
        refused = client.put("/api/hooks/a", json=hook("a", "http://127.0.0.1:9/b", ["x"]))
        assert refused.status_code == 403
        assert "read-only" in refused.json()["error"]
        assert client.post("/api/replays", json={}, headers=AUTH).status_code == 403
        assert client.get("/openapi.json").status_code == 200


def finished(client: httpx.Client, started: httpx.Response) -> dict[str, Any]:
    """The replay `started` once it is no longer running."""
    assert started.status_code == 202, started.text
    replay_id = started.json()["id"]

    def state() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/replays/{replay_id}").json()
        return body if body["status"] != "running" else None

    result = wait_for(state, 60, message=f"replay {replay_id}")
    assert result["status"] == "done", json.dumps(result)
    return result
