"""The generated OpenAPI document: valid OpenAPI 3.1, listing every API route with the roles it
needs, hook bodies described by the hooks schema."""

from __future__ import annotations

from pathlib import Path

from admin_support import VIEWER
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from ruamel.yaml import YAML

from dispatcher.api.app import API_ROUTERS
from dispatcher.api.openapi import openapi_document

EXAMPLES = Path(__file__).parents[3] / "deploy" / "examples" / "hooks"


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
