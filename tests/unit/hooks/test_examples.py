"""The example hooks: each validates, renders its sample event to the expected bytes, and
the published JSON Schema accepts every example and rejects the broken file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from dispatcher.hooks.loader import load_hooks_file, validate_hooks_text
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.judge import judge
from dispatcher.pipeline.render import render_body

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "deploy" / "examples" / "hooks"
SECRETS = ("SMS_API_KEY", "PAYMENT_API_TOKEN", "SHIPPING_PASSWORD", "ERP_CLIENT_SECRET")
SECRETS += ("CRM_TOKEN", "TAX_API_KEY")
CASES = {
    "sms-gateway": ("order-shipped", "application/x-www-form-urlencoded", "txt"),
    "payment": ("order-placed", "application/json", "json"),
    "shipping": ("order-packed", "application/xml; charset=utf-8", "xml"),
    "erp-import": ("order-placed", "text/csv; charset=utf-8", "csv"),
    "crm": ("customer-updated", "application/json", "json"),
    "tax": ("invoice-issued", "application/json", "json"),
}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"test-{name.lower()}")


def example(name: str) -> Hook:
    [hook] = load_hooks_file(EXAMPLES / f"{name}.yaml")
    return hook


def sample(name: str) -> Event:
    return Event.from_dict(json.loads((EXAMPLES / "events" / f"{name}.json").read_text()))


def schema_validator() -> Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / "hooks.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_every_example_file_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_validates_without_problems_or_warnings(name: str) -> None:
    path = EXAMPLES / f"{name}.yaml"
    assert validate_hooks_text(path.read_text(), str(path), warnings=True) == []
    assert example(name).id == name


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_renders_its_sample_event_to_the_expected_bytes(name: str) -> None:
    event, media_type, extension = CASES[name]
    body = render_body(example(name), sample(event))
    assert body.media_type == media_type
    assert body.content == (EXAMPLES / "expected" / f"{name}.{extension}").read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_published_schema_accepts_every_example(name: str) -> None:
    document = YAML(typ="safe", pure=True).load((EXAMPLES / f"{name}.yaml").read_text())
    assert list(schema_validator().iter_errors(document)) == []


def test_published_schema_rejects_the_broken_file() -> None:
    document = YAML(typ="safe", pure=True).load((ROOT / "tests/data/broken-hooks.yaml").read_text())
    paths = {tuple(e.absolute_path) for e in schema_validator().iter_errors(document)}
    assert ("hooks", 0) in paths  # mehtod
    assert ("hooks", 1, "method") in paths
    assert ("hooks", 2, "id") in paths


def test_shipping_uses_the_port_and_basic_auth() -> None:
    hook = example("shipping")
    assert hook.url == "https://api.shipping.example.com:8443/xml/shipments"
    assert (hook.auth.type, hook.auth.get("username")) == ("basic", "dugaa")


def test_crm_subscribes_to_every_customer_event_in_key_order() -> None:
    hook = example("crm")
    assert (hook.events, hook.method, hook.ordering) == (("customer.*",), "PATCH", "key")


RESPONSES: dict[str, list[tuple[int, bytes, bool, dict[str, Any]]]] = {
    "sms-gateway": [
        (200, b"OK 88412", True, {"reply": "OK 88412"}),
        (200, b"ERR 17 no credit", False, {"reply": "ERR 17 no credit"}),
    ],
    "payment": [
        (
            201,
            b'{"id":"ch_1","status":"pending"}',
            True,
            {"charge_id": "ch_1", "status": "pending"},
        ),
        (200, b'{"id":"ch_2","status":"failed"}', False, {"charge_id": "ch_2", "status": "failed"}),
    ],
    "shipping": [
        (
            200,
            b"<ShipmentResponse><Status>ACCEPTED</Status><TrackingNumber>KE-991</TrackingNumber>"
            b"</ShipmentResponse>",
            True,
            {"tracking_number": "KE-991"},
        ),
        (200, b"<ShipmentResponse><Status>REJECTED</Status></ShipmentResponse>", False, {}),
    ],
    "tax": [
        (
            201,
            b'{"status":"committed","document":{"code":"KRA-1"},"summary":{"totalTax":800.0}}',
            True,
            {"tax_document": "KRA-1", "total_tax": 800.0},
        ),
        (200, b'{"status":"committed","messages":["late"]}', False, {}),
        (200, b"<html>busy</html>", False, {}),
    ],
}


@pytest.mark.parametrize(
    ("name", "status", "body", "ok", "captured"),
    [(name, *case) for name, cases in RESPONSES.items() for case in cases],
)
def test_example_response_checks(
    name: str, status: int, body: bytes, ok: bool, captured: dict[str, Any]
) -> None:
    verdict = judge(example(name).response, status, {}, body)
    assert verdict.ok is ok
    assert verdict.captured == captured
    if not ok:
        assert verdict.kind == "response_invalid"
