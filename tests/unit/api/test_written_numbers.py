"""A number in a header value or a field's constant that would be sent other than as written
(`1.10` as 1.1, `1e3` as 1000.0) is refused through the admin API's JSON as through the
console's YAML, saying how to quote it; a number sent as written is stored as it is."""

from __future__ import annotations

import json

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryStore, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService

JSON = {**ADMIN, "content-type": "application/json"}
HOOK = '"id": "erp", "events": ["x"], "url": "https://erp.example.com/"'


@pytest.fixture
def store(app: FastAPI) -> MemoryStore:
    service: AdminService = app.state.admin
    return MemoryStore.installed(service)


@pytest.mark.parametrize(
    ("part", "path", "message"),
    [
        (
            '"headers": {"X-Version": 1.10}',
            "headers.X-Version",
            'is read as the number 1.1: quote it ("1.10") to send it as written',
        ),
        (
            '"headers": {"X-Count": 1e3}',
            "headers.X-Count",
            'is read as the number 1000.0: quote it ("1e3") to send it as written',
        ),
        (
            '"fields": [{"name": "amount", "value": 1.10, "type": "decimal"}]',
            "fields[0].value",
            'is read as the number 1.1: quote it ("1.10") to send it as written',
        ),
    ],
)
def test_a_json_number_that_would_be_sent_rewritten_is_refused(
    client: TestClient, store: MemoryStore, part: str, path: str, message: str
) -> None:
    answer = client.put("/api/hooks/erp", content=f"{{{HOOK}, {part}}}", headers=JSON)
    assert answer.status_code == 422, answer.text
    assert answer.json()["problems"] == [{"path": path, "message": message, "line": None}]
    assert store.stored == {}


def test_a_json_number_sent_as_written_is_stored_as_it_is(
    client: TestClient, store: MemoryStore
) -> None:
    body = (
        f'{{{HOOK}, "headers": {{"X-Version": 2, "X-Rate": 1.5}},'
        ' "fields": [{"name": "n", "value": 1.50, "type": "decimal", "format": "0.00"},'
        ' {"name": "v", "value": "1.10"}]}'
    )
    answer = client.put("/api/hooks/erp", content=body, headers=JSON)
    assert answer.status_code in (200, 201), answer.text
    stored = store.stored["erp"]
    assert stored["headers"] == {"X-Version": 2, "X-Rate": 1.5}
    assert type(stored["headers"]["X-Rate"]) is float  # a plain number, as JSON writes it
    assert json.loads(json.dumps(stored))["fields"][1]["value"] == "1.10"


def test_the_editor_refuses_a_yaml_number_that_would_be_sent_rewritten(
    client: TestClient, store: MemoryStore
) -> None:
    csrf = signed_in(client, ADMIN_TOKEN)
    text = "id: erp\nevents: [x]\nurl: https://erp.example.com/\nheaders: {X-Zip: 01234}\n"
    form = {"csrf": csrf, "yaml": text, "original": "", "base": ""}
    answer = client.post("/hooks/check", data=form, follow_redirects=False)
    assert answer.status_code == 422, answer.text[:300]
    assert "is read as the number 1234" in answer.text
    assert store.stored == {}
