"""Edits of a hook shown masked, through the API (GET then PUT) and the console's editor: each
`***` sent back keeps the stored secret reference it stands for (a URL's piece, a key by id, a
secret of a list by its shown number), and one that stands for nothing stored is a 422."""

from __future__ import annotations

from typing import Any

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryStore, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService

SECRETS = {
    "DISPATCHER_SECRET_PATH": "s3cr3t-path",
    "DISPATCHER_SECRET_OLD": "whsec_b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQt",
    "DISPATCHER_SECRET_NEW": "whsec_bmV3LW5ldy1uZXctbmV3LW5ldy1uZXct",
}


@pytest.fixture
def store(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    service: AdminService = app.state.admin
    return MemoryStore.installed(service)


def stored(store: MemoryStore, **extra: Any) -> dict[str, Any]:
    raw = {"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/in", **extra}
    store.stored["erp"] = raw
    store.apply([])
    return raw


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example.com/in/${env:DISPATCHER_SECRET_PATH}",
        "https://erp.example.com/in?code=${env:DISPATCHER_SECRET_PATH}",
    ],
)
def test_putting_back_the_hook_as_shown_keeps_the_url_reference(
    client: TestClient, store: MemoryStore, url: str
) -> None:
    stored(store, url=url)
    shown = client.get("/api/hooks/erp", headers=ADMIN)
    assert "s3cr3t" not in shown.text
    put = client.put("/api/hooks/erp", headers=ADMIN, json=shown.json())
    assert put.status_code == 200, put.text
    assert store.stored["erp"]["url"] == url


def test_putting_back_the_hook_as_shown_keeps_its_url_as_written(
    client: TestClient, store: MemoryStore
) -> None:
    query = "since=2024-01-01T10:00:00+01:00&flag&key="
    url = f"https://erp.example.com/in?{query}${{env:DISPATCHER_SECRET_PATH}}"
    stored(store, url=url)
    shown = client.get("/api/hooks/erp", headers=ADMIN).json()
    assert shown["url"] == f"https://erp.example.com/in?{query}***"
    put = client.put("/api/hooks/erp", headers=ADMIN, json={**shown, "description": "ERP"})
    assert put.status_code == 200, put.text
    assert store.stored["erp"]["url"] == url


def test_a_url_with_a_mask_standing_for_nothing_is_a_422_and_not_saved(
    client: TestClient, store: MemoryStore
) -> None:
    raw = stored(store, url="https://erp.example.com/in/${env:DISPATCHER_SECRET_PATH}")
    shown = client.get("/api/hooks/erp", headers=ADMIN).json()
    answer = client.put(
        "/api/hooks/erp", headers=ADMIN, json={**shown, "url": "https://erp.example.com/***"}
    )
    assert answer.status_code == 422
    assert [p["path"] for p in answer.json()["problems"]] == ["url"]
    assert store.stored["erp"] == raw


def test_dropping_the_first_of_two_hmac_secrets_keeps_the_second(
    client: TestClient, store: MemoryStore
) -> None:
    both = ["${env:DISPATCHER_SECRET_OLD}", "${env:DISPATCHER_SECRET_NEW}"]
    stored(store, auth={"type": "hmac", "secrets": both})
    shown = client.get("/api/hooks/erp", headers=ADMIN).json()
    assert shown["auth"]["secrets"] == ["***1", "***2"]
    shown["auth"]["secrets"] = shown["auth"]["secrets"][1:]
    assert client.put("/api/hooks/erp", headers=ADMIN, json=shown).status_code == 200
    assert store.stored["erp"]["auth"]["secrets"] == ["${env:DISPATCHER_SECRET_NEW}"]
    shown["auth"]["secrets"] = ["***2"]  # now there is only ***1
    answer = client.put("/api/hooks/erp", headers=ADMIN, json=shown)
    assert answer.status_code == 422
    assert [p["path"] for p in answer.json()["problems"]] == ["auth.secrets[0]"]


def test_the_editor_drops_a_retired_secret_without_moving_the_other(
    client: TestClient, store: MemoryStore
) -> None:
    both = ["${env:DISPATCHER_SECRET_OLD}", "${env:DISPATCHER_SECRET_NEW}"]
    stored(store, auth={"type": "hmac", "secrets": both})
    csrf = signed_in(client, ADMIN_TOKEN)
    page = client.get("/hooks/erp/edit").text
    assert "&#39;***1&#39;" in page or "***1" in page
    yaml = (
        "id: erp\nevents: [order.*]\nurl: https://erp.example.com/in\n"
        "auth: {type: hmac, secrets: ['***2']}\n"
    )
    form = {"yaml": yaml, "original": "erp", "base": "erp", "csrf": csrf}
    saved = client.post("/hooks/save", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert store.stored["erp"]["auth"]["secrets"] == ["${env:DISPATCHER_SECRET_NEW}"]
