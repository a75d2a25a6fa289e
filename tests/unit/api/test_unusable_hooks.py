"""A stored hook the workers cannot use, as the admin API and the console show it: listed, its
state and why (never a secret's value), and what it holds, nothing made up."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from admin_support import ADMIN, VIEWER, VIEWER_TOKEN, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService
from dispatcher.hooks.definitions import merged
from dispatcher.kafka.follower import StoreFollower
from dispatcher.model.event import Record
from dispatcher.pipeline.match import HookIndex

ERP = {
    "id": "erp",
    "events": ["order.*"],
    "url": "https://erp.example.com/in",
    "tenant": "acme",
    "auth": {"type": "bearer", "token": "${env:DISPATCHER_SECRET_ERP_TOKEN}"},
}
CRM = {"id": "crm", "events": ["customer.*"], "url": "https://crm.example.com/in"}
NOT_SET = "environment variable DISPATCHER_SECRET_ERP_TOKEN is not set"


@pytest.fixture
def service(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> AdminService:
    """The admin service after reading a store that holds ERP, whose token is not set where
    the service runs, and CRM: through the follower the workers use, without Kafka."""
    monkeypatch.delenv("DISPATCHER_SECRET_ERP_TOKEN", raising=False)
    service: AdminService = app.state.admin
    follower = StoreFollower(service.settings, HookIndex(), service._set_hooks)
    follower._apply([stored(0, ERP), stored(1, CRM)])
    service.follower = follower
    service._set_hooks(merged([], follower.stored))
    return service


def stored(offset: int, definition: dict[str, Any]) -> Record:
    value = json.dumps(definition).encode()
    return Record("hooks", 0, offset, definition["id"].encode(), value, ())


def test_the_api_lists_and_shows_an_unusable_hook_with_why_and_only_what_it_holds(
    client: TestClient, service: AdminService
) -> None:
    listed = client.get("/api/hooks", headers=VIEWER)
    assert listed.status_code == 200, listed.text
    hooks = {hook["id"]: hook for hook in listed.json()["hooks"]}
    assert sorted(hooks) == ["crm", "erp"]
    erp = hooks["erp"]
    assert NOT_SET in erp["unusable"]
    assert erp["unusable"].startswith("its stored definition does not load on this worker: ")
    assert erp["source"] == "store"
    assert {k: erp[k] for k in ("events", "tenant", "enabled")} == {
        "events": ["order.*"],
        "tenant": "acme",
        "enabled": True,
    }
    assert "url" not in erp  # a stand-in's URL, method, format ... would be made up
    assert "auth" not in erp
    assert hooks["crm"]["unusable"] is None
    assert client.get("/api/hooks/erp", headers=VIEWER).json() == erp


def test_trying_an_unusable_hook_says_what_the_workers_do_and_sends_nothing(
    client: TestClient, service: AdminService
) -> None:
    """The workers dead-letter its events as `config`: "try" says so, rendering nothing (a
    stand-in's URL would be made up) and sending nothing."""
    event = {"specversion": "1.0", "id": "e1", "source": "s", "type": "order.created"}
    tried = client.post("/api/hooks/erp/test", json={"event": event, "send": True}, headers=ADMIN)
    assert tried.status_code == 200, tried.text
    assert "request" not in tried.json()
    verdict = tried.json()["verdict"]
    assert (verdict["ok"], verdict["error_kind"]) == (False, "config")
    assert verdict["error"] == f"the hook is unusable: {service.hooks().get('erp').unusable}"
    assert "status" not in verdict  # nothing was sent


def test_the_console_marks_an_unusable_hook_with_why_on_the_hooks_page_and_its_own(
    client: TestClient, service: AdminService
) -> None:
    signed_in(client, VIEWER_TOKEN)
    page = client.get("/").text
    rows = dict(re.findall(r'<tr id="hook-(\w+)">(.*?)</tr>', page, flags=re.DOTALL))
    assert 'class="off unusable">unusable</span>' in rows["erp"]
    assert NOT_SET in html.unescape(rows["erp"])
    assert "unusable" not in rows["crm"]

    hook_page = client.get("/hooks/erp/outcomes")
    assert hook_page.status_code == 200
    assert "Unusable: its events are dead-lettered with error kind config" in hook_page.text
    assert NOT_SET in html.unescape(hook_page.text)
    assert "Unusable" not in client.get("/hooks/crm/outcomes").text
