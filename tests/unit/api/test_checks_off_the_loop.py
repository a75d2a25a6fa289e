"""Checking a hook definition (YAML, schema, loader) is CPU work, seconds of it for a large one
within `admin.max_body_bytes`: it runs off the event loop, so every other request is answered
while one is checked."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryStore, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.pages import editor
from dispatcher.api.service import AdminService
from dispatcher.hooks import definitions

# Only a deadlock breaker: work held on the event loop keeps every other request waiting, so
# without it the old code would hang rather than fail. No assertion depends on it.
HOLD = 10.0
ERP = {"id": "erp", "events": ["order.paid"], "url": "https://erp.example.com/in"}
EDITED = "id: erp\nevents: [order.paid]\nurl: https://erp.example.com/v2\n"
OWN_PAGE = {"sec-fetch-site": "same-origin"}


@pytest.fixture
def store(app: FastAPI) -> MemoryStore:
    service: AdminService = app.state.admin
    return MemoryStore.installed(service, [ERP])


class Held:
    """`module.name`, a step of the work, held on its first call until `released`: `entered`
    once a request is in it, `finished` once it has gone on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.entered, self.released, self.finished = (threading.Event() for _ in range(3))
        real: Callable[..., Any] = getattr(module, name)

        def held(*args: Any) -> Any:
            if not self.entered.is_set():
                self.entered.set()
                self.released.wait(HOLD)
                self.finished.set()
            return real(*args)

        monkeypatch.setattr(module, name, held)

    def answered_meanwhile(self, client: TestClient, sent: Future[httpx.Response]) -> None:
        """Another request is answered while the held request waits in the held step."""
        assert self.entered.wait(HOLD), sent.result().text
        assert client.get("/healthz").status_code == 200
        assert not self.finished.is_set()  # answered while the step was still held
        self.released.set()


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("POST", "/hooks/check", 200),
        ("POST", "/hooks/save", 303),
        ("POST", "/hooks/erp/toggle", 303),
        ("PUT", "/api/hooks/erp", 200),
    ],
)
def test_another_request_is_answered_while_a_definition_is_checked(
    client: TestClient,
    store: MemoryStore,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    answer: int,
) -> None:
    csrf = signed_in(client, ADMIN_TOKEN)
    check = Held(monkeypatch, definitions, "too_large_to_check")  # the checks' first step
    if path.startswith("/api/"):
        send: dict[str, Any] = {"json": {**ERP, "url": "https://erp.example.com/v2"}}
        send["headers"] = ADMIN
    else:
        send = {"data": {"csrf": csrf, "yaml": EDITED, "original": "erp", "base": "erp"}}
    with ThreadPoolExecutor(1) as pool:
        checking = pool.submit(client.request, method, path, follow_redirects=False, **send)
        check.answered_meanwhile(client, checking)
        checked = checking.result()
    assert checked.status_code == answer, checked.text
    stored = store.stored["erp"]
    if path == "/hooks/check":
        assert "+url: https://erp.example.com/v2" in checked.text  # the review, as before
        assert stored["url"] == ERP["url"]
    elif path.endswith("/toggle"):
        assert stored["enabled"] is False
    else:
        assert stored["url"] == "https://erp.example.com/v2"


def test_another_request_is_answered_while_a_signed_in_draft_is_read_for_the_editor(
    client: TestClient, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = Held(monkeypatch, editor, "loose")  # the draft's YAML read for the fields form
    signing_in = {"token": ADMIN_TOKEN, "draft.yaml": EDITED, "draft.original": "erp"}
    with ThreadPoolExecutor(1) as pool:
        resumed = pool.submit(client.post, "/login", data=signing_in, headers=OWN_PAGE)
        read.answered_meanwhile(client, resumed)
        page = resumed.result()
    assert page.status_code == 200, page.text
    assert "Nothing was checked or saved" in page.text
    assert store.stored["erp"] == ERP
