"""A definition that one of its own parts would override unseen as it is sent (a second active
encryption key, a key id given twice, a key_id beside keys, a header the auth replaces, an API
key replacing a header or a query parameter) is refused alike by the admin API (422, the field
named), the console's editor (the problem beside its line) and the hook store's reader, and
nothing is stored."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryStore, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from dispatcher.api.service import AdminService
from dispatcher.config.secrets import SecretScope
from dispatcher.hooks.definitions import fold
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook

KEY = "${env:DISPATCHER_SECRET_KEY}"
TOKEN = "${env:DISPATCHER_SECRET_TOKEN}"
SECRETS = {"DISPATCHER_SECRET_KEY": "A" * 43, "DISPATCHER_SECRET_TOKEN": "t0ken-never-shown"}
BASE: dict[str, Any] = {"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/in"}


def key_set(*keys: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"encryption": {"algorithm": "A256GCM", "keys": list(keys), **extra}}


# (what the definition adds to BASE, the path refused, a piece of the message)
OVERRIDES = [
    (
        key_set({"id": "new", "key": KEY}, {"id": "old", "key": KEY}),
        "encryption.keys",
        "2 keys are active (keys[0], keys[1]); exactly one encrypts",
    ),
    (
        key_set({"id": "k1", "key": KEY}, {"id": "k1", "key": KEY, "state": "decrypt-only"}),
        "encryption.keys[1].id",
        "duplicate key id",
    ),
    (
        key_set({"id": "k1", "key": KEY}, key_id="k2"),
        "encryption.key_id",
        "would be ignored beside keys",
    ),
    (
        {"auth": {"type": "bearer", "token": TOKEN}, "headers": {"authorization": TOKEN}},
        "headers.authorization",
        "is the header auth (bearer) sends its credential in",
    ),
    (
        {
            "auth": {"type": "api_key", "name": "X-Api-Key", "value": TOKEN},
            "headers": {"x-api-key": TOKEN},
        },
        "headers.x-api-key",
        "is the header auth (api_key) sends its credential in",
    ),
    (
        {"auth": {"type": "api_key", "name": "Content-Type", "value": TOKEN}},
        "auth.name",
        "is set by the dispatcher on every request: the API key would replace it",
    ),
    (
        {
            "url": f"https://erp.example.com/in?key={TOKEN}",
            "auth": {"type": "api_key", "name": "key", "in": "query", "value": TOKEN},
        },
        "url",
        "the key would replace its value on every request",
    ),
]
CASES = pytest.mark.parametrize(
    ("extra", "path", "says"), OVERRIDES, ids=[p for _, p, _ in OVERRIDES]
)


@pytest.fixture
def store(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    service: AdminService = app.state.admin
    return MemoryStore.installed(service)


@CASES
def test_the_api_refuses_it_naming_the_field(
    client: TestClient, store: MemoryStore, extra: dict[str, Any], path: str, says: str
) -> None:
    answer = client.post("/api/hooks", headers=ADMIN, json={**BASE, **extra})
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    assert [p["path"] for p in problems] == [path]
    assert says in problems[0]["message"]
    assert SECRETS["DISPATCHER_SECRET_TOKEN"] not in answer.text
    assert store.stored == {}


@CASES
def test_the_editor_refuses_it_beside_its_line(
    client: TestClient, store: MemoryStore, extra: dict[str, Any], path: str, says: str
) -> None:
    csrf = signed_in(client, ADMIN_TOKEN)
    text = io.StringIO()
    YAML(typ="safe", pure=True).dump({**BASE, **extra}, text)
    for action in ("/hooks/check", "/hooks/save"):
        page = client.post(action, data={"yaml": text.getvalue(), "csrf": csrf})
        assert page.status_code == 422, page.text
        assert '<tr class="bad"' in page.text
        assert says.replace("'", "&#39;") in page.text
    assert store.stored == {}


@CASES
def test_the_store_reader_refuses_a_stored_record_of_it(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], path: str, says: str
) -> None:
    """Written by an older version, which took it: a worker does not load it."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    value = json.dumps({**BASE, **extra}).encode()
    stored: dict[str, Hook] = {}
    reason = fold(stored, Record("store", 0, 7, b"erp", value, ()), SecretScope())
    assert reason is not None
    assert f"{path}: " in reason
    assert says in reason
    assert stored == {}
