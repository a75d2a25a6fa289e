"""The attempts topic on the real broker: an event its receiver answers 503, 503, then 200 (local
retries) has its three attempts in the attempts topic, in order, keyed by the event's id, with
what the receiver said; `GET /api/events/{id}` and the event page show them; the hook's secret
appears nowhere, even when the receiver echoes it back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_support import ADMIN_TOKEN, TOKEN_ENV, VIEWER, AdminDeployment, running_admin
from dispatch_support import cloud_event, collect_until, hook, wait_ready
from kafka_support import wait_for

from dispatcher.devtools.receiver import Behaviour, Received, Receiver

TOKEN = "erp-bearer-81c3-secret"
API_KEY = "erp-key-55d0-secret"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**TOKEN_ENV, "ERP_TOKEN": TOKEN, "ERP_KEY": API_KEY}.items():
        monkeypatch.setenv(name, value)


def busy_twice(receiver: Receiver, request: Received) -> Behaviour:
    """503 to the first two attempts of each webhook-id (the second echoing the request's
    credentials back, as some servers do), then 200."""
    key = request.headers.get("webhook-id", "")
    seen = sum(1 for r in receiver.received() if r.headers.get("webhook-id") == key)
    if seen == 1:
        return Behaviour(status=503, body=b'{"error":"busy","retry_in":"1s"}')
    if seen == 2:
        echoed = {
            "error": "still busy",
            "you_sent": {
                "authorization": request.headers.get("authorization"),
                "x-api-key": request.headers.get("x-api-key"),
            },
        }
        return Behaviour(status=503, body=json.dumps(echoed).encode())
    return Behaviour(status=200, body=b'{"id":"ERP-1234","status":"accepted"}')


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        running.responder = lambda request: busy_twice(running, request)
        yield running


def erp_hook(url: str) -> dict[str, Any]:
    return hook(
        "erp",
        f"{url}/erp?account=acme&apikey={API_KEY}",
        ["order.paid"],
        auth={"type": "bearer", "token": "${env:ERP_TOKEN}"},
        headers={"X-Api-Key": "${env:ERP_KEY}"},
    )


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """The settings `topic` was given itself (not the cluster's defaults it shows too)."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # held until the answer is in
    entries = admin.describe_configs([resource])[resource].result(timeout=15)
    own = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    return {name: entry.value for name, entry in entries.items() if entry.source == own}


def signed_in(client: httpx.Client) -> None:
    answer = client.post("/login", data={"token": ADMIN_TOKEN, "next": "/"})
    assert answer.status_code == 303, answer.text


def test_an_event_delivered_on_the_third_try_has_every_attempt_recorded_and_shown(
    kafka_bootstrap: str, tmp_path: Path, receiver: Receiver
) -> None:
    deployment = AdminDeployment(kafka_bootstrap, tmp_path, [erp_hook(receiver.url)])
    event = cloud_event("order.paid", {"order_id": "1234", "total": 99})
    with deployment.worker() as worker:
        wait_ready(worker)
        deployment.produce_events([event])
        results = collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60)
        records = collect_until(kafka_bootstrap, deployment.attempts, lambda rs: len(rs) >= 3, 30)

        (result,) = [r.json() for r in results]
        assert (result["outcome"], result["attempts"]) == ("delivered", 3)
        sent = receiver.received()
        assert len(sent) == 3
        assert sent[0].headers["authorization"] == f"Bearer {TOKEN}"  # what the records hide
        attempts = [r.json() for r in records]
        assert {r.key for r in records} == {event["id"].encode()}
        assert len({r.partition for r in records}) == 1  # in one partition, in order
        assert [a["attempt"] for a in attempts] == [1, 2, 3]
        assert [a["http_status"] for a in attempts] == [503, 503, 200]
        assert [a["error_kind"] for a in attempts] == ["http_status", "http_status", None]
        assert attempts[0]["response_excerpt"] == '{"error":"busy","retry_in":"1s"}'
        assert '"authorization": "Bearer ***"' in attempts[1]["response_excerpt"]
        assert '"x-api-key": "***"' in attempts[1]["response_excerpt"]
        assert attempts[2]["response_excerpt"] == '{"id":"ERP-1234","status":"accepted"}'
        assert {a["idempotency_key"] for a in attempts} == {result["idempotency_key"]}
        assert all(a["latency_ms"] > 0 for a in attempts)
        assert topic_config(kafka_bootstrap, deployment.attempts)["retention.ms"] == str(
            7 * 86400 * 1000
        )  # the worker made the topic with `topics.attempts_retention` (default 7 days)
        assert attempts[0]["at"] <= attempts[1]["at"] <= attempts[2]["at"] <= result["completed_at"]
        for record in records:
            assert_secret_free(record.value.decode())
            assert "account=acme" not in record.value.decode()  # no URL, no query

        with running_admin(deployment.settings) as admin, admin.client() as client:
            index = admin.service.index
            wait_for(lambda: len(index.attempts_of_event(event["id"])) == 3, 60, message="indexed")
            looked_up = client.get(f"/api/events/{event['id']}", headers=VIEWER)
            assert looked_up.status_code == 200
            shown = looked_up.json()["attempts"]
            assert [(a["hook_id"], a["attempt"], a["http_status"]) for a in shown] == [
                ("erp", 1, 503),
                ("erp", 2, 503),
                ("erp", 3, 200),
            ]
            assert [a["response_excerpt"] for a in shown] == [
                a["response_excerpt"] for a in attempts
            ]
            assert_secret_free(looked_up.text)
            by_hook = client.get("/api/hooks/erp/attempts", headers=VIEWER).json()
            assert by_hook["status_classes"] == {"2xx": 1, "5xx": 2}
            assert [a["attempt"] for a in by_hook["attempts"]] == [3, 2, 1]

            signed_in(client)
            page = client.get("/events", params={"id": event["id"]})
            assert page.status_code == 200
            table = page.text[page.text.index('id="attempts-erp"') :]
            rows = re.findall(r'<tr class="attempt[^"]*">(.*?)</tr>', table, re.S)
            assert len(rows) == 3
            assert "503" in rows[0]
            assert "200" in rows[2]
            assert (
                "{&#34;id&#34;:&#34;ERP-1234&#34;,&#34;status&#34;:&#34;accepted&#34;}" in rows[2]
            )
            assert "Bearer ***" in rows[1]
            assert_secret_free(page.text)
            hook_page = client.get("/hooks/erp/outcomes")
            assert 'id="recent-attempts"' in hook_page.text
            assert_secret_free(hook_page.text)


def assert_secret_free(text: str) -> None:
    for secret in (TOKEN, API_KEY):
        assert secret not in text
        assert secret.replace("-", "%2D") not in text
