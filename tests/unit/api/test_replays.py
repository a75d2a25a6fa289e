"""Replays from the admin API and the console, without Kafka (the jobs' runs are faked): what a
start answers when the service is busy, and the console's confirmation of a dry run."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService
from dispatcher.errors import ReplaysBusy
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook
from dispatcher.ops.replay import jobs as jobs_module
from dispatcher.ops.replay.plan import Plan, Summary
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.pipeline.match import HookIndex

HOOK = Hook.from_dict({"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/"})
LETTER = DeadLetter.from_record(
    Record("dlq", 0, 7, b"k", b"{}", (("dispatcher.hook.id", b"erp"),), 0)
)


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


@pytest.mark.parametrize("since", ["80000000h", "9999-12-31T23:59:59-01:00"])
def test_a_replay_of_a_time_outside_the_years_1_to_9999_is_a_422_and_the_list_still_answers(
    client: TestClient, service: AdminService, since: str
) -> None:
    answer = client.post("/api/replays", headers=ADMIN, json={"since": since, "dry_run": True})
    assert answer.status_code == 422, answer.text
    assert "outside the years 1 to 9999" in answer.json()["error"]
    listed = client.get("/api/replays", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"replays": []}


@pytest.mark.parametrize("rate", ["Infinity", "1e999", '"inf"', "NaN", "-Infinity", "-1", "0"])
def test_a_replay_at_a_rate_not_a_finite_number_above_0_is_a_422_naming_the_rate(
    client: TestClient, service: AdminService, rate: str
) -> None:
    """Infinity was taken, and shown as a rate of null."""
    body = f'{{"hook": "erp", "dry_run": true, "rate": {rate}}}'  # as JSON.parse and Python read
    answer = client.post(
        "/api/replays", content=body, headers={**ADMIN, "content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert [p["path"] for p in answer.json()["problems"]] == ["rate"]
    assert service.replays.all() == []


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ReplayOptions]:
    """The options of every replay and dry run run, each planning one letter to send."""
    options: list[ReplayOptions] = []

    def fake_run(_settings: Any, _hooks: Any, wanted: ReplayOptions, *_a: Any, **_k: Any) -> Any:
        options.append(wanted)
        return Plan(send=(LETTER,)), Summary(selected=1, dry_run=wanted.dry_run)

    monkeypatch.setattr(jobs_module, "run_replay", fake_run)
    return options


def finished(service: AdminService, job_id: str) -> None:
    deadline = time.monotonic() + 5
    while (job := service.replays.get(job_id)) is None or job.status == "running":
        assert time.monotonic() < deadline, f"replay {job_id} did not end"
        time.sleep(0.01)


def test_confirming_a_dry_run_in_the_console_replays_exactly_its_selection(
    client: TestClient, service: AdminService, started: list[ReplayOptions]
) -> None:
    dry = client.post("/api/replays", headers=ADMIN, json={
        "hook": "erp", "error_kind": "http_status", "since": "2h",
        "until": "2099-11-29T10:00:00Z", "limit": 1, "rate": 5, "dry_run": True,
    })  # fmt: skip
    assert dry.status_code == 202, dry.text
    finished(service, dry.json()["id"])
    signed_in(client, ADMIN_TOKEN)
    page = client.get(f"/replays/{dry.json()['id']}").text
    form = re.search(r'<form method="post" action="/replays">(.*?)</form>', page, re.S)
    assert form is not None
    assert "Replay 1 dead letter" in form.group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(1)))
    assert fields["confirm"] == dry.json()["id"]
    confirmed = client.post("/replays", data=fields, follow_redirects=False)
    assert confirmed.status_code == 303, confirmed.text
    replay_id = confirmed.headers["location"].removeprefix("/replays/")
    finished(service, replay_id)
    the_dry_run, the_replay = started
    assert the_replay == replace(the_dry_run, dry_run=False)
    assert the_replay.selection.since is not None  # the age, as the dry run resolved it


def test_only_a_finished_dry_run_the_caller_sees_can_be_confirmed(
    client: TestClient, service: AdminService, started: list[ReplayOptions]
) -> None:
    csrf = signed_in(client, ADMIN_TOKEN)
    unknown = client.post("/replays", data={"csrf": csrf, "confirm": "nope"})
    assert unknown.status_code == 404
    real = client.post("/api/replays", headers=ADMIN, json={"hook": "erp"})
    finished(service, real.json()["id"])
    not_a_dry_run = client.post("/replays", data={"csrf": csrf, "confirm": real.json()["id"]})
    assert not_a_dry_run.status_code == 404
    without_csrf = client.post("/replays", data={"confirm": real.json()["id"]})
    assert without_csrf.status_code == 403
    assert len(started) == 1
