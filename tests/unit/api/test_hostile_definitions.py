"""Hook definitions built to make the admin service recurse or expand without bound, through the
API and the console's editor: each is refused with a 4xx naming why, never a 500, and nothing
of it is stored (a stored one broke every answer that shows the hook)."""

from __future__ import annotations

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryStore, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.service import AdminService

DEEP = 300  # levels: within what JSON and YAML read, past what the checks could walk


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def aliased(levels: int) -> str:
    """YAML whose last anchor, through aliases of aliases, stands for 10**levels values."""
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels + 1):
        text += f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n"
    return text


@pytest.fixture
def store(app: FastAPI) -> MemoryStore:
    service: AdminService = app.state.admin
    return MemoryStore.installed(service)


def test_a_definition_nested_too_deeply_is_a_422_and_the_hooks_still_show(
    client: TestClient, store: MemoryStore
) -> None:
    body = (
        '{"id": "deep", "events": ["x"], "url": "https://erp.example.com/",'
        f' "fields": [{{"name": "a", "value": {nested(DEEP)}}}]}}'
    )
    for method, path in (("POST", "/api/hooks"), ("PUT", "/api/hooks/deep")):
        answer = client.request(
            method, path, content=body, headers={**ADMIN, "content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["problems"] == [
            {"path": "", "message": "the definition nests deeper than 64 levels", "line": None}
        ]
    assert store.stored == {}
    assert client.get("/api/hooks", headers=ADMIN).status_code == 200


def test_a_body_too_deep_to_read_is_a_400(client: TestClient, store: MemoryStore) -> None:
    answer = client.put(
        "/api/hooks/deep",
        content=nested(2_000),  # within the unit app's 4 KiB
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": "the body nests too deeply to read"}


HOOK = "id: deep\nurl: https://erp.example.com/\n"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (f"{HOOK}events: [x]\nfields: [{{name: a, value: {nested(100)}}}]\n", "deeper than 64"),
        (f"{HOOK}events: [x]\nfields: [{{name: a, value: {nested(DEEP)}}}]\n", "nests too deeply"),
        (f"{HOOK}{aliased(5)}events: *a5\n", "expand to more than 10 values per character"),
    ],
    ids=["nested", "nested-past-the-reader", "aliased"],
)
def test_the_editor_refuses_a_definition_too_deep_or_too_large_to_check(
    client: TestClient, store: MemoryStore, text: str, said: str
) -> None:
    csrf = signed_in(client, ADMIN_TOKEN)
    for path in ("/hooks/check", "/hooks/save"):
        form = {"csrf": csrf, "yaml": text, "original": "", "base": ""}
        answer = client.post(path, data=form, follow_redirects=False)
        assert answer.status_code == 422, (path, answer.text[:300])
        assert said in answer.text
        assert "&#39;x&#39;, &#39;x&#39;" not in answer.text  # its fields form left empty
    assert store.stored == {}
