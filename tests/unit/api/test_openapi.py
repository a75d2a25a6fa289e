"""The generated OpenAPI document: valid OpenAPI 3.1, listing every API route with the roles it
needs, every status it answers with the body it sends, hook bodies described by the hooks
schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from admin_support import ADMIN, VIEWER, MemoryStore
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from ruamel.yaml import YAML

from dispatcher.api.app import API_ROUTERS
from dispatcher.api.openapi import openapi_document
from dispatcher.api.service import AdminService
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex

EXAMPLES = Path(__file__).parents[3] / "deploy" / "examples" / "hooks"
URL = "https://erp.example.com/"


def api_routes() -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }


def test_the_document_is_valid_openapi_3_1_and_served_behind_a_token(
    app: FastAPI, client: TestClient
) -> None:
    document = openapi_document(app)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/api/openapi.json", headers=VIEWER).json() == document


def test_every_route_is_documented_and_every_documented_operation_is_routed(app: FastAPI) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in openapi_document(app)["paths"].items()
        for method in operations
    }
    routed = api_routes()
    assert documented == routed
    assert {
        ("GET", "/api/hooks"),
        ("POST", "/api/hooks"),
        ("PUT", "/api/hooks/{hook_id}"),
        ("DELETE", "/api/hooks/{hook_id}"),
        ("POST", "/api/hooks/{hook_id}/test"),
        ("GET", "/api/hooks/{hook_id}/outcomes"),
        ("GET", "/api/events/{event_id}"),
        ("GET", "/api/dead-letters"),
        ("POST", "/api/replays"),
        ("GET", "/api/replays/{replay_id}"),
    } <= routed


def test_every_operation_needs_the_bearer_token(app: FastAPI) -> None:
    document = openapi_document(app)
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_hook_bodies_are_described_by_the_hooks_schema(app: FastAPI) -> None:
    document = openapi_document(app)
    for path, method in (("/api/hooks", "post"), ("/api/hooks/{hook_id}", "put")):
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/hooks.hook"}
    schema = {"$ref": "#/components/schemas/hooks.hook", "components": document["components"]}
    validator = Draft202012Validator(schema)
    hooks = []
    for path in sorted(EXAMPLES.glob("**/*.yaml")):
        loaded = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and isinstance(loaded.get("hooks"), list):
            hooks += loaded["hooks"]
    assert hooks, "no example hooks found"
    for hook in hooks:
        assert list(validator.iter_errors(hook)) == [], hook.get("id")
    wrong = {"id": "Bad Id", "events": [], "url": 5}
    assert {e.path[0] if e.path else e.validator for e in validator.iter_errors(wrong)} >= {
        "id",
        "events",
        "url",
    }


def described(document: dict[str, Any], method: str, path: str, answer: Response) -> None:
    """Whether the document lists `answer`'s status for the operation, with a schema its body
    meets and whose properties name every key the body has (when it names its keys)."""
    responses = document["paths"][path][method.lower()]["responses"]
    status = str(answer.status_code)
    assert status in responses, (method, path, status, answer.text)
    schema = responses[status]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(answer.json())
    if "$ref" in schema:
        named = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if named.get("additionalProperties") is not True:
            assert set(answer.json()) <= set(named["properties"]), (method, path, status)


def test_every_status_a_route_answers_is_documented_with_the_body_it_sends(
    app: FastAPI, client: TestClient
) -> None:
    service: AdminService = app.state.admin
    service._set_hooks(HookIndex([Hook.from_dict({"id": "some-id", "events": ["x"], "url": URL})]))
    document = openapi_document(app)
    for method, path in sorted(api_routes()):
        url = f"{re.sub(r'{[^}]+}', 'some-id', path)}?limit=0"
        for headers in ({}, VIEWER, ADMIN):  # 401; 403 or a read; what an admin's wrong values get
            answer = client.request(method, url, json={"bogus": 1}, headers=headers)
            described(document, method, path, answer)


def test_a_hook_stored_but_not_yet_read_back_is_a_documented_202(
    app: FastAPI, client: TestClient
) -> None:
    class Unconfirmed(MemoryStore):
        def wait_for(self, _written: object, _timeout: float) -> bool:
            return False

    service: AdminService = app.state.admin
    Unconfirmed.installed(service)
    hook = {"id": "erp", "events": ["x"], "url": URL}
    answer = client.post("/api/hooks", json=hook, headers=ADMIN)
    assert answer.status_code == 202, answer.text
    described(openapi_document(app), "POST", "/api/hooks", answer)
