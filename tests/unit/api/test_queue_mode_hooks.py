"""With the service in queue mode, the API and the console refuse to store a hook ordered by
key: no worker could run it (a share group gives no order)."""

from __future__ import annotations

import dataclasses

import pytest
from admin_support import ADMIN, MemoryStore
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService

LEDGER = {"id": "ledger", "events": ["order.*"], "url": "https://ledger.example.com/in"}


@pytest.fixture
def store(app: FastAPI) -> MemoryStore:
    service: AdminService = app.state.admin
    service.settings = dataclasses.replace(service.settings, consume="share")
    return MemoryStore.installed(service)


def test_a_hook_ordered_by_key_is_refused_in_queue_mode_and_not_stored(
    client: TestClient, store: MemoryStore
) -> None:
    answer = client.post("/api/hooks", headers=ADMIN, json={**LEDGER, "ordering": "key"})

    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["path"] == "ordering"
    assert "consume: share gives no order" in problem["message"]
    assert "ledger" not in store.stored


def test_a_hook_without_order_is_stored_in_queue_mode(
    client: TestClient, store: MemoryStore
) -> None:
    answer = client.post("/api/hooks", headers=ADMIN, json=LEDGER)

    assert answer.status_code == 201, answer.text
    assert "ledger" in store.stored
