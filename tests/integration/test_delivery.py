"""The delivery path end to end: real broker, real HTTP receiver on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from contract_fields import RESULT_FIELDS
from dispatch_support import Deployment, cloud_event, hook, wait_ready
from kafka_support import Outgoing, consume_all, wait_for

from dispatcher import USER_AGENT
from dispatcher.devtools.receiver import Behaviour, Receiver


def test_delivered_pairs_have_result_records_and_requests_carry_identity(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["customer.*"]),
                hook(
                    "erp",
                    f"{receiver.url}/erp",
                    ["customer.created"],
                    fields=[
                        {"name": "Name", "from": "data.name"},
                        {"name": "src", "value": "DUGAA"},
                    ],
                ),
            ],
            partitions=2,
        )
        events = [cloud_event("customer.created", {"name": f"c{i}"}) for i in range(10)]
        deployment.produce_events(events)
        with deployment.worker():
            results = consume_all(kafka_bootstrap, deployment.results, 20, timeout=60)
        assert len(results) == 20
        for record in results:
            body = record.json()
            assert set(body) == set(RESULT_FIELDS)
            assert body["outcome"] == "delivered"
            assert body["http_status"] == 200
            assert body["source_topic"] == deployment.events
        assert {(r.json()["event_id"], r.json()["hook_id"]) for r in results} == {
            (e["id"], h) for e in events for h in ("crm", "erp")
        }
        crm = receiver.received("/crm")
        assert sorted(json.loads(r.body)["name"] for r in crm) == sorted(f"c{i}" for i in range(10))
        erp = receiver.received("/erp")
        assert {r.body for r in erp} == {
            json.dumps({"Name": f"c{i}", "src": "DUGAA"}, separators=(",", ":")).encode()
            for i in range(10)
        }
        for request in crm + erp:
            assert request.headers["user-agent"] == USER_AGENT
            assert request.headers["webhook-id"].startswith("msg_")
        ids = {r.json()["idempotency_key"] for r in results}
        assert ids == {r.headers["webhook-id"] for r in crm + erp}


def test_a_4xx_endpoint_yields_dead_letters_carrying_the_original_record(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver({"/reject": Behaviour(status=422, body=b'{"error":"bad"}')}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("tax", f"{receiver.url}/reject", ["order.paid"]),
            ],
        )
        event = cloud_event("order.paid", {"total": "10.00"})
        original = Outgoing(
            json.dumps(event),
            key=b"order-7",
            headers=(
                ("content-type", b"application/cloudevents+json"),
                ("traceparent", b"00-abc-def-01"),
                ("x-empty", b""),
                ("x-null", None),  # Kafka tells a null header value from an empty one
            ),
        )
        deployment.produce_raw([original])
        with deployment.worker():
            dead = consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
            results = consume_all(kafka_bootstrap, deployment.results, 1, timeout=30)
        assert len(dead) == 1
        letter = dead[0]
        assert letter.key == b"order-7"
        assert letter.value == original.value.encode()  # type: ignore[union-attr]
        assert letter.headers[:4] == (
            ("content-type", b"application/cloudevents+json"),
            ("traceparent", b"00-abc-def-01"),
            ("x-empty", b""),
            ("x-null", None),
        )
        assert letter.header("content-type") == b"application/cloudevents+json"
        assert letter.header("dispatcher.hook.id") == b"tax"
        assert letter.header("dispatcher.error.kind") == b"http_status"
        assert letter.header("dispatcher.http.status") == b"422"
        assert letter.header("dispatcher.attempts") == b"1"
        assert letter.header("dispatcher.source.topic") == deployment.events.encode()
        assert letter.header("dispatcher.source.offset") == b"0"
        assert letter.header("__connect.errors.topic") == deployment.events.encode()
        for name in (
            "dispatcher.error.message",
            "dispatcher.idempotency.key",
            "dispatcher.failed.at",
            "dispatcher.source.partition",
            "__connect.errors.partition",
            "__connect.errors.offset",
            "__connect.errors.exception.class.name",
            "__connect.errors.exception.message",
        ):
            assert letter.header(name), name
        assert results[0].json()["outcome"] == "dead_lettered"
        assert results[0].json()["error_kind"] == "http_status"
        assert len(receiver.received("/reject")) == 1  # a 422 is permanent: no retry


def test_undecodable_records_become_decode_dead_letters_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["customer.created"]),
            ],
        )
        good = cloud_event("customer.created", {"name": "after"})
        deployment.produce_raw(
            [
                Outgoing(b"\xff\xfe not json"),
                Outgoing(b'{"no": "specversion"}'),
                Outgoing(b"[1, 2, 3]"),
                Outgoing(json.dumps(good)),
            ]
        )
        with deployment.worker():
            dead = consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
            results = consume_all(kafka_bootstrap, deployment.results, 1, timeout=30)
        assert [d.header("dispatcher.error.kind") for d in dead] == [b"decode"] * 3
        assert sorted(d.value for d in dead) == sorted(
            [b"\xff\xfe not json", b'{"no": "specversion"}', b"[1, 2, 3]"]
        )
        assert results[0].json()["event_id"] == good["id"]


def test_an_event_that_matches_no_hook_causes_no_request_and_is_committed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("crm", f"{receiver.url}/crm", ["customer.created"]),
            ],
        )
        deployment.produce_events(
            [cloud_event("inventory.counted", {"n": 1}) for _ in range(3)]
            + [cloud_event("customer.created", {"n": 2})]
        )
        with deployment.worker() as worker:
            consume_all(kafka_bootstrap, deployment.results, 1, timeout=60)
            wait_for(
                lambda: deployment.committed() == 4,
                30,
                message="offsets committed past the unmatched events",
            )
            wait_ready(worker)
        assert [json.loads(r.body) for r in receiver.received()] == [{"n": 2}]


def test_binary_mode_events_are_delivered_with_their_data(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("sms", f"{receiver.url}/sms", ["order.shipped"]),
            ],
        )
        deployment.produce_raw(
            [
                Outgoing(
                    b'{"phone": "+254700000001"}',
                    headers=(
                        ("ce_specversion", b"1.0"),
                        ("ce_id", b"b-1"),
                        ("ce_type", b"order.shipped"),
                        ("ce_source", b"/shop"),
                        ("content-type", b"application/json"),
                    ),
                )
            ]
        )
        with deployment.worker():
            results = consume_all(kafka_bootstrap, deployment.results, 1, timeout=60)
        assert results[0].json()["event_id"] == "b-1"
        assert json.loads(receiver.received("/sms")[0].body) == {"phone": "+254700000001"}


def test_a_hanging_endpoint_is_judged_a_timeout(kafka_bootstrap: str, tmp_path: Path) -> None:
    with Receiver({"/hang": Behaviour(hang=True)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "slow",
                    f"{receiver.url}/hang",
                    ["order.paid"],
                    timeout="300ms",
                    retry={"max_attempts": 1},
                ),
            ],
        )
        deployment.produce_events([cloud_event("order.paid", {"x": 1})])
        with deployment.worker():
            dead = consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
        assert dead[0].header("dispatcher.error.kind") == b"timeout"
