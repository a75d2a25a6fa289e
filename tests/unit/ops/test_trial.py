"""Trying a hook: the request shown is the request sent, with every credential masked, and the
command line and the admin API show it through the same masking."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import pytest

from dispatcher.cli.output import render_failure_text, request_text, targeting_text
from dispatcher.config.settings import Settings
from dispatcher.hooks.loader import hook_from_definition
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.ops import trial
from dispatcher.ops.trial import NOT_FOR_THE_HOOK, OAUTH2_NOTE, NotSent, prepare, send

SECRET = "s3cr3t-value-4f1d"
EVENT = Event(id="e-1", type="order.paid", source="/shop", data={"total": 12, "phone": "+2547"})


def hook(**changes: Any) -> Hook:
    raw: dict[str, Any] = {
        "id": "crm",
        "events": ["order.*"],
        "url": "https://crm.example/in?tenant=acme",
        "headers": {"x-session": SECRET, "x-tenant": "acme"},
        **changes,
    }
    return hook_from_definition(raw, "test")


def test_the_shown_request_is_the_rendered_one_with_credentials_masked() -> None:
    tried = prepare(hook(auth={"type": "basic", "username": "u", "password": SECRET}), EVENT)
    assert tried.request is not None
    assert tried.shown is not None
    headers = dict(tried.shown.headers)
    assert headers["authorization"] == "Basic ***"
    assert headers["x-session"] == "***"
    assert headers["x-tenant"] == "acme"
    assert headers["webhook-id"] == tried.request.header("webhook-id")
    assert tried.shown.body == tried.request.content
    # the request to send is not the signed copy that was shown
    assert tried.request.header("authorization") is None


def test_an_api_key_is_masked_in_the_query_and_in_a_header_whatever_its_name() -> None:
    in_query = {"type": "api_key", "in": "query", "name": "k", "value": SECRET}
    tried = prepare(hook(auth=in_query), EVENT)
    assert tried.shown is not None
    assert tried.shown.url == "https://crm.example/in?tenant=acme&k=***"
    in_header = {"type": "api_key", "in": "header", "name": "x-vendor", "value": SECRET}
    tried = prepare(hook(auth=in_header), EVENT)
    assert tried.shown is not None
    assert dict(tried.shown.headers)["x-vendor"] == "***"


def test_the_command_line_and_the_api_show_the_same_masked_request() -> None:
    tried = prepare(hook(auth={"type": "bearer", "token": SECRET}), EVENT)
    assert tried.shown is not None
    text = request_text(tried.shown)
    document = tried.shown.as_dict()
    assert SECRET not in text
    assert SECRET not in str(document)
    for name, value in document["headers"].items():
        assert f"{name}: {value}" in text
    assert document["url"] in text.splitlines()[0]
    assert document["body"] in text


def test_oauth2_is_noted_not_fetched() -> None:
    oauth = {
        "type": "oauth2_client_credentials",
        "token_url": "https://auth.example/token",
        "client_id": "id",
        "client_secret": SECRET,
    }
    tried = prepare(hook(auth=oauth), EVENT)
    assert tried.shown is not None
    assert "authorization" not in dict(tried.shown.headers)
    assert OAUTH2_NOTE in request_text(tried.shown)
    assert tried.shown.as_dict()["note"] == OAUTH2_NOTE


def test_a_render_failure_is_a_failure_not_a_request() -> None:
    strict = hook(fields=[{"name": "Phone", "from": "data.missing", "required": True}])
    tried = prepare(strict, EVENT)
    assert (tried.request, tried.shown) == (None, None)
    assert tried.failure is not None
    assert render_failure_text(tried.failure).startswith("render failed (render): ")


def test_trying_a_hook_says_whether_the_event_passes_its_tenant_and_filter() -> None:
    filtered = hook(
        tenant="acme",
        url="https://crm.example/orders/{data.phone}?total={data.total}",
        filter=[{"path": "data.total", "gte": 100}, {"path": "data.phone", "matches": "^\\+254"}],
    )
    tried = prepare(filtered, EVENT)
    assert tried.excluded == (
        "the hook serves tenant 'acme'; the event has no tenant",
        "filter: expected data.total to be >= 100, got 12",
    )
    assert "NOT for this hook" in targeting_text(tried.excluded)
    assert tried.shown is not None
    assert tried.shown.url == "https://crm.example/orders/%2B2547?total=12"
    rich = Event(
        id="e-2",
        type="order.paid",
        source="/shop",
        tenant="acme",
        data={"total": 100.0, "phone": "+2547"},
    )
    passed = prepare(filtered, rich)
    assert passed.excluded == ()
    assert targeting_text(passed.excluded).startswith("filter: the event is for this hook")


def test_the_shown_url_is_the_url_sent_for_values_with_spaces_and_plus_signs() -> None:
    tried = prepare(hook(url="https://crm.example/in?q={data.phone}&s={id}"), EVENT)
    assert tried.shown is not None
    assert tried.request is not None
    assert tried.shown.url == str(tried.request.url) == "https://crm.example/in?q=%2B2547&s=e-1"
    spaced = Event(id="a b", type="order.paid", source="/shop", data={"phone": "+1 2"})
    tried = prepare(hook(url="https://crm.example/in?q={data.phone}&s={id}"), spaced)
    assert tried.shown is not None
    assert tried.request is not None
    assert tried.shown.url == str(tried.request.url) == "https://crm.example/in?q=%2B1%202&s=a%20b"


def test_an_event_not_for_the_hook_is_not_sent_and_the_trial_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one guard every surface sends through: `hooks test --send`, the API, the console."""

    async def never(*_args: object) -> NoReturn:
        raise AssertionError("sent")

    monkeypatch.setattr(trial, "_send", never)
    tenants = hook(tenant="acme")
    tried = prepare(tenants, EVENT)
    assert tried.shown is not None  # rendered, and shown
    not_sent = send(Settings(), tenants, tried)
    assert not_sent == NotSent(("the hook serves tenant 'acme'; the event has no tenant",))
    assert not_sent.reason == NOT_FOR_THE_HOOK


def test_an_event_of_a_type_the_hook_does_not_take_is_not_sent_and_the_trial_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its tenant and filter passing, it was said to be "for this hook" and sent, though no
    worker would ever send it there."""

    async def never(*_args: object) -> NoReturn:
        raise AssertionError("sent")

    monkeypatch.setattr(trial, "_send", never)
    orders = hook(events=["order.*", "refund.issued"])
    customer = Event(id="e-2", type="customer.created", source="/crm", data={})
    tried = prepare(orders, customer)
    assert tried.shown is not None  # rendered, and shown
    assert send(Settings(), orders, tried) == NotSent(
        (
            "the hook takes events of type order.*, refund.issued;"
            " the event has type 'customer.created'",
        )
    )
    assert prepare(orders, EVENT).excluded == ()  # order.paid: order.* takes it


def test_an_event_file_gives_its_extensions_to_the_hook_tried(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(
        '{"specversion": "1.0", "id": "e-1", "type": "order.paid", "source": "/shop",'
        ' "region": "eu", "data": {}}',
        encoding="utf-8",
    )
    erp = hook(
        headers={"x-region": "{extensions.region}"},
        filter=[{"path": "extensions.region", "equals": "eu"}],
    )

    tried = prepare(erp, trial.read_event(path))

    assert tried.excluded == ()
    assert tried.shown is not None
    assert dict(tried.shown.headers)["x-region"] == "eu"
