"""Pause and resume in the admin API and the console, without Kafka: roles, CSRF, the state shown,
and the replay a resume starts (its selection: the hook's letters since the pause began)."""

from __future__ import annotations

import re

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, VIEWER, VIEWER_TOKEN, MemoryDecisions
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService
from dispatcher.model.hook import Hook
from dispatcher.ops.replay.jobs import ReplayJob
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.pipeline.match import HookIndex

HOOK = Hook.from_dict({"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/"})


@pytest.fixture
def service(app: FastAPI) -> AdminService:
    service: AdminService = app.state.admin
    service._set_hooks(HookIndex([HOOK]))
    decisions = MemoryDecisions()
    service.pauses = decisions
    service.health = decisions  # type: ignore[assignment]
    return service


@pytest.fixture
def started(service: AdminService, monkeypatch: pytest.MonkeyPatch) -> list[ReplayOptions]:
    """The replays a resume starts, recorded instead of run (running one needs Kafka)."""
    options: list[ReplayOptions] = []

    def start(wanted: ReplayOptions, tenant: str | None = None) -> tuple[ReplayJob, bool]:
        options.append(wanted)
        return ReplayJob("job-1", wanted, 1.0, tenant), True

    monkeypatch.setattr(service.replays, "start", start)
    return options


def test_a_hook_is_healthy_until_paused_and_a_second_pause_changes_nothing(
    client: TestClient, service: AdminService
) -> None:
    assert client.get("/api/hooks/erp/health", headers=VIEWER).json()["state"] == "healthy"
    first = client.post("/api/hooks/erp/pause", headers=ADMIN)
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["reason"], first.json()["changed"]) == (
        "paused", "manual", True
    )  # fmt: skip
    again = client.post("/api/hooks/erp/pause", headers=ADMIN).json()
    assert (again["changed"], again["since"]) == (False, first.json()["since"])
    shown = client.get("/api/hooks/erp/health", headers=VIEWER).json()
    assert (shown["state"], shown["since"]) == ("paused", first.json()["since"])


def test_a_viewer_sees_the_pause_but_may_not_pause_or_resume(
    client: TestClient, service: AdminService
) -> None:
    for path in ("/api/hooks/erp/pause", "/api/hooks/erp/resume"):
        assert client.post(path, headers=VIEWER).status_code == 403
    assert service.pauses.get("erp") is None  # type: ignore[union-attr]


def test_resuming_a_hook_that_is_not_paused_is_a_conflict(
    client: TestClient, service: AdminService
) -> None:
    answer = client.post("/api/hooks/erp/resume", headers=ADMIN)
    assert answer.status_code == 409
    assert answer.json() == {"error": "hook 'erp' is not paused"}
    assert client.post("/api/hooks/absent/pause", headers=ADMIN).status_code == 404


def test_resume_with_replay_starts_the_replay_of_the_letters_since_the_pause(
    client: TestClient, started: list[ReplayOptions]
) -> None:
    client.post("/api/hooks/erp/pause", headers=ADMIN)
    paused = client.get("/api/hooks/erp/health", headers=ADMIN).json()
    answer = client.post("/api/hooks/erp/resume", json={"replay": True}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["since"], body["replay"]["id"]) == (
        "resumed", paused["since"], "job-1"
    )  # fmt: skip
    (options,) = started
    assert options.selection.hook == "erp"
    assert options.selection.since is not None
    assert body["replay"]["selection"]["since"] == paused["since"]
    assert client.get("/api/hooks/erp/health", headers=ADMIN).json()["state"] == "resumed"


def test_resume_without_replay_starts_none(
    client: TestClient, started: list[ReplayOptions]
) -> None:
    client.post("/api/hooks/erp/pause", headers=ADMIN)
    assert client.post("/api/hooks/erp/resume", headers=ADMIN).json()["replay"] is None
    assert started == []


def sign_in(client: TestClient, token: str) -> str:
    client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/dead-letters").text)
    assert found is not None
    return found.group(1)


def test_the_console_pauses_and_resumes_with_the_sessions_csrf_token(
    client: TestClient, service: AdminService, started: list[ReplayOptions]
) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    assert 'action="/hooks/erp/pause"' in client.get("/").text
    forged = client.post("/hooks/erp/pause", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert service.pauses.get("erp") is None  # type: ignore[union-attr]
    paused = client.post("/hooks/erp/pause", data={"csrf": csrf}, follow_redirects=False)
    assert (paused.status_code, paused.headers["location"]) == (303, "/")
    page = client.get("/").text
    assert "paused</span>" in page
    assert page.count('action="/hooks/erp/resume"') == 2  # resume, and resume and replay
    resumed = client.post(
        "/hooks/erp/resume", data={"csrf": csrf, "replay": "on"}, follow_redirects=False
    )
    assert (resumed.status_code, resumed.headers["location"]) == (303, "/replays/job-1")
    assert len(started) == 1
    assert "paused</span>" not in client.get("/").text


def test_a_viewer_session_sees_the_paused_state_and_no_button(
    client: TestClient, service: AdminService
) -> None:
    client.post("/api/hooks/erp/pause", headers=ADMIN)
    csrf = sign_in(client, VIEWER_TOKEN)
    page = client.get("/").text
    assert "paused</span>" in page
    assert "/hooks/erp/resume" not in page
    answer = client.post("/hooks/erp/resume", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 403
