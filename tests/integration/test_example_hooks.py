"""Every example hook, through the broker, delivers exactly the expected bytes; checks and capture."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from dispatch_support import Deployment, collect_until
from kafka_support import Outgoing

from dispatcher.devtools.receiver import Behaviour, Received, Receiver

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "hooks"
SECRETS = {
    "SMS_API_KEY": "sms-key",
    "PAYMENT_API_TOKEN": "pay-token",
    "SHIPPING_PASSWORD": "ship-pw",
    "ERP_CLIENT_SECRET": "erp-secret",
    "CRM_TOKEN": "crm-token",
    "TAX_API_KEY": "tax-key",
}
CASES = [  # hook, sample event, expected body, what the third party answers
    (
        "sms-gateway",
        "order-shipped.json",
        "sms-gateway.txt",
        Behaviour(body=b"OK 5501", content_type="text/plain"),
    ),
    (
        "payment",
        "order-placed.json",
        "payment.json",
        Behaviour(status=201, body=b'{"id":"ch_9","status":"succeeded"}'),
    ),
    (
        "shipping",
        "order-packed.json",
        "shipping.xml",
        Behaviour(
            body=b"<ShipmentResponse><Status>ACCEPTED</Status>"
            b"<TrackingNumber>KE77</TrackingNumber></ShipmentResponse>",
            content_type="application/xml",
        ),
    ),
    ("erp-import", "order-placed.json", "erp-import.csv", Behaviour(status=202, body=b"")),
    ("crm", "customer-updated.json", "crm.json", Behaviour(body=b'{"id":"c-42"}')),
    (
        "tax",
        "invoice-issued.json",
        "tax.json",
        Behaviour(
            body=b'{"status":"committed","document":{"code":"TX-1"},"summary":{"totalTax":"16.00"}}'
        ),
    ),
]
TOKEN = Behaviour(body=b'{"access_token":"erp-access","token_type":"Bearer","expires_in":3600}')


def hooks_pointing_at(base: str, max_attempts: int | None = None) -> list[dict]:
    """The example hooks with every vendor host replaced by the local receiver."""
    import yaml

    hooks = []
    for hook_id, *_ in CASES:
        text = (EXAMPLES / f"{hook_id}.yaml").read_text()
        text = re.sub(r"https://[a-z0-9.-]*example\.com", base, text)
        (hook,) = yaml.safe_load(text)["hooks"]
        hook.pop("rate_limit", None)
        hook.pop("port", None)  # the receiver listens on its own port
        if "token_url" in hook.get("auth", {}):
            hook["auth"]["insecure_token_url"] = True  # the loopback receiver has no TLS
        if max_attempts is not None:
            hook["retry"] = {"max_attempts": max_attempts}
        hooks.append(hook)
    return hooks


def route(answers: dict[str, Behaviour]):  # type: ignore[no-untyped-def]
    def respond(request: Received) -> Behaviour | None:
        path = request.path.split("?", 1)[0]
        if path.endswith("/oauth2/token"):
            return TOKEN
        return answers.get(path)

    return respond


def path_of(hook: dict) -> str:
    return "/" + hook["url"].split("/", 3)[3].split("?", 1)[0]


def sample(name: str) -> bytes:
    event = json.loads((EXAMPLES / "events" / name).read_text())
    return json.dumps(event).encode()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("secrets")
def test_each_example_hook_delivers_exactly_the_expected_bytes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        hooks = hooks_pointing_at(receiver.url)
        paths = {h["id"]: path_of(h) for h in hooks}
        receiver.responder = route({paths[hook_id]: answer for hook_id, _, _, answer in CASES})
        deployment = Deployment(kafka_bootstrap, tmp_path, hooks)
        events = sorted({event for _, event, _, _ in CASES})
        deployment.produce_raw([Outgoing(sample(e)) for e in events])
        pairs = sum(1 for _ in CASES)
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= pairs, 90
            )
        outcomes = {r.json()["hook_id"]: r.json() for r in results}
        assert {k: v["outcome"] for k, v in outcomes.items()} == {h: "delivered" for h, *_ in CASES}
        for hook_id, _, expected, _ in CASES:
            got = [r for r in receiver.received() if r.path.split("?")[0] == paths[hook_id]]
            assert len(got) == 1, hook_id
            assert got[0].body == (EXAMPLES / "expected" / expected).read_bytes(), hook_id
        assert outcomes["tax"]["captured"] == {"tax_document": "TX-1", "total_tax": "16.00"}
        assert outcomes["sms-gateway"]["captured"] == {"reply": "OK 5501"}
        assert outcomes["shipping"]["captured"] == {"tracking_number": "KE77"}


@pytest.mark.usefixtures("secrets")
def test_a_failing_expect_dead_letters_with_response_invalid(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        (tax,) = [h for h in hooks_pointing_at(receiver.url, max_attempts=2) if h["id"] == "tax"]
        receiver.responder = route({path_of(tax): Behaviour(body=b'{"status":"rejected"}')})
        deployment = Deployment(kafka_bootstrap, tmp_path, [tax], extra={"local_retries": 1})
        event = json.loads(sample("invoice-issued.json"))
        event["id"] = str(uuid.uuid4())
        deployment.produce_raw([Outgoing(json.dumps(event))])
        with deployment.worker():
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 1, 60
            )
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 30
            )
        assert dead[0].header("dispatcher.error.kind") == b"response_invalid"
        # permanent: the third party took the request and said no; it is not sent again
        assert dead[0].header("dispatcher.attempts") == b"1"
        assert len(receiver.received()) == 1  # the tax hook is the only one
        assert b"status" in (dead[0].header("dispatcher.error.message") or b"")
        assert results[0].json()["error_kind"] == "response_invalid"
