"""How the admin service answers a failure: a console page asked for by a browser gets the
console's error page (its header, the security headers, no word of the failure), an API route
its short JSON; the failure itself is logged."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import httpx
import pytest
from admin_support import ADMIN, ADMIN_TOKEN, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from dispatcher.api import problems
from dispatcher.api.pages import pausing as pausing_page
from dispatcher.api.pages import records as records_page
from dispatcher.api.routes import records as records_route
from dispatcher.api.server import server
from dispatcher.errors import KafkaUnavailable

HTML = {"accept": "text/html,application/xhtml+xml"}
CLOSE = {"connection": "close"}
DETAIL = "cursor broke near DISPATCHER_SECRET_ERP_TOKEN"  # what no answer may repeat


def broken(*_args: object, **_kwargs: object) -> NoReturn:
    raise RuntimeError(DETAIL)


def test_a_page_failing_unexpectedly_answers_the_consoles_error_page_and_logs_the_failure(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(records_page, "event_records", broken)
    signed_in(client, ADMIN_TOKEN)
    with caplog.at_level(logging.ERROR, logger="dispatcher.api.problems"):
        page = client.get("/events?id=e-1", headers=HTML)
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>500</h1>" in page.text
    assert "internal error" in page.text
    assert ">Sign out</button>" in page.text  # the header of every signed-in page
    assert DETAIL not in page.text
    assert "Traceback" not in page.text
    assert page.headers["x-frame-options"] == "DENY"  # as on every other page
    assert "script-src 'self'" in page.headers["content-security-policy"]
    (logged,) = [r for r in caplog.records if r.name == "dispatcher.api.problems"]
    assert logged.getMessage() == "GET /events failed"
    assert logged.exc_info is not None
    assert str(logged.exc_info[1]) == DETAIL


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """The app's admin service under the server `dispatcher admin` runs (uvicorn), on a
    loopback socket already listening when it starts: a request waits in its backlog."""
    listening = socket.create_server(("127.0.0.1", 0))
    admin = server(app.state.admin.settings, app.state.admin)
    thread = threading.Thread(target=admin.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    port = listening.getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            yield client
    finally:
        admin.should_exit = True
        thread.join(timeout=30)
        listening.close()
    assert not thread.is_alive(), "the admin service did not stop"


def test_a_failure_under_the_server_is_logged_once_with_its_traceback_and_no_credential(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette re-raised the failure after its handler had answered and logged it, and
    uvicorn logged it again ("Exception in ASGI application"): each failure twice."""
    monkeypatch.setattr(records_route, "event_records", broken)
    monkeypatch.setattr(records_page, "event_records", broken)
    with caplog.at_level(logging.INFO), served(app) as client:
        signed_in(client, ADMIN_TOKEN)
        (cookie,) = client.cookies.values()
        # each on a connection of its own: the old code's server closed one after its 500
        api = client.get("/api/events/e-1", params={"hook": "erp"}, headers={**ADMIN, **CLOSE})
        page = client.get("/events", params={"id": "e-1"}, headers={**HTML, **CLOSE})
    assert (api.status_code, page.status_code) == (500, 500)
    assert page.headers["x-frame-options"] == api.headers["x-frame-options"] == "DENY"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, r.getMessage()) for r in failures] == [
        ("dispatcher.api.problems", "GET /api/events/e-1 failed"),
        ("dispatcher.api.problems", "GET /events failed"),
    ]
    assert all(r.exc_info and str(r.exc_info[1]) == DETAIL for r in failures)
    served_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test's
    logged = "\n".join(logging.Formatter().format(r) for r in served_side)
    assert "Traceback" in logged
    for secret in (ADMIN_TOKEN, cookie, "hook=erp", "id=e-1"):
        assert secret not in logged


def test_the_error_page_is_answered_when_reading_the_session_fails_too(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_page, "event_records", broken)
    signed_in(client, ADMIN_TOKEN)
    monkeypatch.setattr(problems, "signed_in", broken)
    page = client.get("/events?id=e-1", headers=HTML)
    assert page.status_code == 500
    assert "<h1>500</h1>" in page.text
    assert "Sign out" not in page.text  # no session to show
    assert DETAIL not in page.text


def test_an_api_route_failing_unexpectedly_answers_short_json(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_route, "event_records", broken)
    answer = client.get("/api/events/e-1", headers={**ADMIN, **HTML})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert answer.headers["x-frame-options"] == "DENY"


def test_a_page_whose_kafka_is_unreachable_answers_the_consoles_error_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_args: object) -> NoReturn:
        raise KafkaUnavailable("Kafka at 127.0.0.1:9 was not reached within 10s")

    monkeypatch.setattr(pausing_page.pausing, "pause", unreachable)
    csrf = signed_in(client, ADMIN_TOKEN)
    page = client.post("/hooks/erp/pause", data={"csrf": csrf}, headers=HTML)
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>503</h1>" in page.text
    assert "was not reached within 10s" in page.text
    assert ">Sign out</button>" in page.text


def test_a_page_too_large_to_take_answers_the_consoles_error_page_an_api_call_json(
    client: TestClient,
) -> None:
    """A request refused at the edge (`Bounds`, before any page runs): a console page asked for
    by a browser, such as an editor's check of a definition past `admin.max_body_bytes`, gets
    the error page; an API call its JSON, as before."""
    signed_in(client, ADMIN_TOKEN)
    form = {"yaml": "x" * 5000, "csrf": "whatever"}  # the app's limit: 4096 bytes
    page = client.post("/hooks/check", data=form, headers=HTML)
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>413</h1>" in page.text
    assert "the body may hold at most 4096 bytes" in page.text
    assert page.headers["x-frame-options"] == "DENY"

    api = client.post("/api/hooks", content=b"x" * 5000, headers={**ADMIN, **HTML})
    assert api.status_code == 413
    assert api.json() == {"error": "the body may hold at most 4096 bytes"}


def test_a_failure_after_the_answer_began_is_logged_and_not_answered_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[Message] = []

    async def begins_then_fails(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        broken()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/events", "headers": [], "query_string": b""}
    asyncio.run(problems.Failures(begins_then_fails)(scope, receive, send))
    assert [m.get("status") for m in sent] == [200]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "GET /events failed"
    ]
