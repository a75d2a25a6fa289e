"""Replays from the admin API and the console, without Kafka (the jobs' runs are faked): what a
start answers when the service is busy."""

from __future__ import annotations

from typing import Any

import pytest
from admin_support import ADMIN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService
from dispatcher.errors import ReplaysBusy
from dispatcher.model.hook import Hook
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.pipeline.match import HookIndex

HOOK = Hook.from_dict({"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/"})


@pytest.fixture
def service(app: FastAPI) -> AdminService:
    service: AdminService = app.state.admin
    service._set_hooks(HookIndex([HOOK]))
    return service


def test_a_replay_started_while_the_service_runs_its_most_is_a_429(
    client: TestClient, service: AdminService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(_options: ReplayOptions, _tenant: str | None = None) -> Any:
        raise ReplaysBusy("16 replays or dry runs are running, as many as run at once")

    monkeypatch.setattr(service.replays, "start", busy)
    answer = client.post("/api/replays", headers=ADMIN, json={"hook": "erp"})
    assert answer.status_code == 429
    assert "as many as run at once" in answer.json()["error"]
