"""Trying a hook from the admin API and the console: an event the dispatcher would not send to
the hook (its tenant, its filter) is not sent by a try either, as `hooks test --send` does not
send it, and the answer says why."""

from __future__ import annotations

import html
from typing import Any

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, signed_in
from dispatch_support import cloud_event
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request
from dispatcher.ops import trial
from dispatcher.pipeline.match import HookIndex

BIG_ORDERS = {
    "id": "big-orders",
    "events": ["order.paid"],
    "url": "https://erp.example.com/in",
    "tenant": "acme",
    "filter": [{"path": "data.total", "gte": 100}],
}
NOT_SENT = "the dispatcher would not send this event to this hook"
TENANT = "the hook serves tenant 'acme'; the event has no tenant"
FILTER = "filter: expected data.total to be >= 100, got 12"


@pytest.fixture
def sent(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """Every request a try sends (none leaves this process), each judged delivered."""
    service: AdminService = app.state.admin
    service._set_hooks(HookIndex([Hook.from_dict(BIG_ORDERS)]))
    requests: list[Request] = []

    async def delivered(_settings: Any, _hook: Hook, request: Request) -> trial.TrialVerdict:
        requests.append(request)
        return trial.TrialVerdict(True, 200, None, None, False, {}, 0.01)

    monkeypatch.setattr(trial, "_send", delivered)
    return requests


def test_the_api_sends_no_event_the_hooks_tenant_and_filter_exclude_and_says_why(
    client: TestClient, sent: list[Request]
) -> None:
    event = cloud_event("order.paid", {"total": 12})
    body = {"event": event, "send": True}
    tried = client.post("/api/hooks/big-orders/test", json=body, headers=ADMIN)
    assert tried.status_code == 200, tried.text
    answer = tried.json()
    assert answer["not_sent"] == NOT_SENT
    assert answer["excluded"] == [TENANT, FILTER]
    assert "verdict" not in answer
    assert answer["request"]["url"] == "https://erp.example.com/in"  # still shown
    assert sent == []

    rendered = client.post("/api/hooks/big-orders/test", json={"event": event}, headers=ADMIN)
    assert rendered.json()["excluded"] == [TENANT, FILTER]  # said without send too
    assert "not_sent" not in rendered.json()

    admitted = {**cloud_event("order.paid", {"total": 120}), "tenant": "acme"}
    delivered = client.post(
        "/api/hooks/big-orders/test", json={"event": admitted, "send": True}, headers=ADMIN
    )
    assert delivered.json()["verdict"]["ok"] is True
    assert "excluded" not in delivered.json()
    assert "not_sent" not in delivered.json()
    assert len(sent) == 1


def test_the_console_sends_no_event_the_hooks_filter_excludes_and_says_why(
    client: TestClient, sent: list[Request]
) -> None:
    """The console's sample event is of the hook's tenant (the form has no tenant); its
    filter still decides."""
    csrf = signed_in(client, ADMIN_TOKEN)
    form = {"csrf": csrf, "type": "order.paid", "data": '{"total": 12}', "send": "on"}
    page = client.post("/hooks/big-orders/try", data=form)
    assert page.status_code == 200, page.text
    shown = html.unescape(page.text)
    assert f"Not sent: {NOT_SENT}" in shown
    assert f"<li>{FILTER}</li>" in shown
    assert TENANT not in shown
    assert "Verdict" not in shown
    assert 'class="request"' in shown  # the request is still shown
    assert sent == []

    rendered = client.post("/hooks/big-orders/try", data={**form, "send": ""})
    assert "This event is not for big-orders" in rendered.text  # said without send too

    page = client.post("/hooks/big-orders/try", data={**form, "data": '{"total": 120}'})
    assert "Verdict: delivered" in page.text
    assert "Not sent" not in page.text
    (request,) = sent
    assert request.url == "https://erp.example.com/in"


def test_the_api_and_the_console_send_no_event_of_a_type_the_hook_does_not_take(
    client: TestClient, sent: list[Request]
) -> None:
    typed = "the hook takes events of type order.paid; the event has type 'customer.created'"
    event = {**cloud_event("customer.created", {"total": 120}), "tenant": "acme"}
    tried = client.post(
        "/api/hooks/big-orders/test", json={"event": event, "send": True}, headers=ADMIN
    )
    assert tried.json()["not_sent"] == NOT_SENT
    assert tried.json()["excluded"] == [typed]

    csrf = signed_in(client, ADMIN_TOKEN)
    form = {"csrf": csrf, "type": "customer.created", "data": '{"total": 120}', "send": "on"}
    page = html.unescape(client.post("/hooks/big-orders/try", data=form).text)
    assert f"Not sent: {NOT_SENT}" in page
    assert f"<li>{typed}</li>" in page
    assert sent == []


def test_the_consoles_try_offers_an_event_type_each_of_the_hooks_patterns_takes(
    app: FastAPI, client: TestClient
) -> None:
    """With only patterns, it offered `example.event`, which the hook does not take: its try
    would be refused as not for the hook."""
    service: AdminService = app.state.admin
    globbed = {"id": "globbed", "events": ["order.*", "refund.?"], "url": "https://e.example/in"}
    service._set_hooks(HookIndex([Hook.from_dict(globbed)]))
    signed_in(client, ADMIN_TOKEN)
    page = client.get("/hooks/globbed/try")
    assert page.status_code == 200, page.text
    assert 'name="type" value="order.example"' in page.text
    assert '<option value="refund.x">' in page.text
