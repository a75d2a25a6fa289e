"""The admin API's OpenAPI document: valid OpenAPI 3.1, in step with the routes it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from ruamel.yaml import YAML

from dispatcher.api.openapi import openapi_document
from dispatcher.api.routes import ROUTES

EXAMPLES = Path(__file__).parents[3] / "deploy" / "examples" / "hooks"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    documented = {
        (method.upper(), path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    assert documented == {(route.method, route.pattern) for route in ROUTES}


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.write], ids=lambda r: f"{r.method} {r.pattern}"
)
def test_writes_are_documented_as_needing_the_bearer_token(route: Any) -> None:
    operation = openapi_document()["paths"][route.pattern][route.method.lower()]
    assert operation["security"] == [{"bearer": []}]
    assert {"401", "403"} <= set(operation["responses"])


def test_hook_bodies_are_described_by_the_hooks_schema() -> None:
    document = openapi_document()
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
