"""The admin API's OpenAPI 3.1 document, served at `/openapi.json`.

Hook definitions are described by the hooks JSON Schema itself (draft 2020-12, which OpenAPI
3.1 speaks), so the API and hooks files cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dispatcher import __version__
from dispatcher.hooks.schema import hooks_schema

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "The body is not JSON.",
        401: "No or a wrong bearer token.",
        403: "The API is read-only: no admin.token is configured.",
        404: "Not found.",
        409: "Conflicts with the current state.",
        422: "The input is invalid.",
        503: "Kafka did not answer.",
    }
    return {str(s): _json(_ref("Error"), texts[s]) for s in statuses}


def _op(
    summary: str,
    ok: tuple[int, dict[str, Any], str],
    *,
    errors: tuple[int, ...] = (),
    body: dict[str, Any] | None = None,
    write: bool = False,
    params: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    status, schema, text = ok
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {str(status): _json(schema, text), **_errors(*errors, 503)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if write:
        op["security"] = [{"bearer": []}]
        op["responses"].update(_errors(401, 403))
    if params:
        op["parameters"] = list(params)
    return op


def _path_param(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "string"}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


HOOK_ID = _path_param("id", "The hook id.")
REPLAY_ID = _path_param("id", "The replay id.")
LIMIT = {
    "name": "limit",
    "in": "query",
    "description": "How many outcomes, newest first (1-500).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20},
}

SINCE = {
    "name": "since",
    "in": "query",
    "description": "Count only what was dead-lettered since: ISO 8601, or an age such as 24h "
    "(default: the whole topic).",
    "schema": {"type": "string"},
}


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once)."""
    shown = _ref("HookShown")
    paths = {
        "/api/hooks": {
            "get": _op(
                "The hooks in force (hooks file and store), secrets masked.",
                (
                    200,
                    {"type": "object", "properties": {"hooks": {"type": "array", "items": shown}}},
                    "The hooks.",
                ),
            ),
            "post": _op(
                "Create a hook in the hook store.",
                (201, shown, "Created and in force."),
                errors=(400, 409, 422),
                body=_ref("hooks.hook"),
                write=True,
            ),
        },
        "/api/hooks/{id}": {
            "get": _op(
                "One hook, secrets masked.",
                (200, shown, "The hook."),
                errors=(404,),
                params=(HOOK_ID,),
            ),
            "put": _op(
                "Create or replace a hook in the hook store (a store definition overrides the "
                "hooks file's).",
                (200, shown, "Replaced and in force (201 when created)."),
                errors=(400, 409, 422),
                body=_ref("hooks.hook"),
                write=True,
                params=(HOOK_ID,),
            ),
            "delete": _op(
                "Delete a hook from the hook store.",
                (200, _ref("Deleted"), "Deleted."),
                errors=(404, 409),
                write=True,
                params=(HOOK_ID,),
            ),
        },
        "/api/hooks/{id}/test": {
            "post": _op(
                "Render the request for an event (secrets masked); with send: true (needs the "
                "bearer token), send it once and judge the response.",
                (200, _ref("TestResult"), "The request, and the verdict when sent."),
                errors=(400, 401, 403, 404, 422),
                body=_ref("TestRequest"),
                params=(HOOK_ID,),
            )
        },
        "/api/hooks/{id}/outcomes": {
            "get": _op(
                "Recent outcomes of a hook, read from the results topic.",
                (200, _ref("Outcomes"), "Newest first."),
                params=(HOOK_ID, LIMIT),
            )
        },
        "/api/dead-letters": {
            "get": _op(
                "Dead letters counted by hook and error kind.",
                (200, _ref("DeadLetterCounts"), "The counts."),
                errors=(422,),
                params=(SINCE,),
            )
        },
        "/api/replays": {
            "get": _op(
                "Recent replays.",
                (
                    200,
                    {
                        "type": "object",
                        "properties": {"replays": {"type": "array", "items": _ref("Replay")}},
                    },
                    "The replays.",
                ),
            ),
            "post": _op(
                "Start a replay of dead letters (one at a time).",
                (202, _ref("Replay"), "Started."),
                errors=(400, 409, 422),
                body=_ref("ReplayRequest"),
                write=True,
            ),
        },
        "/api/replays/{id}": {
            "get": _op(
                "One replay, its counts and (dry run) its plan.",
                (200, _ref("Replay"), "The replay."),
                errors=(404,),
                params=(REPLAY_ID,),
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DUGAA dispatcher admin API",
            "version": __version__,
            "description": "Manage hooks in the hook store, test them, look at outcomes and "
            "dead letters, and replay dead letters. Writes need a bearer token (admin.token).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**_schemas(), **_hook_schemas()},
        },
    }


def _schemas() -> dict[str, Any]:
    text, integer = {"type": "string"}, {"type": "integer"}
    maybe_text = {"type": ["string", "null"]}
    summary = {
        "type": "object",
        "properties": {
            "selected": integer,
            "delivered": integer,
            "failed": integer,
            "skipped": integer,
            "dry_run": {"type": "boolean"},
            "skipped_reasons": {"type": "object", "additionalProperties": integer},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": text,
                "problems": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"path": text, "message": text}},
                },
            },
        },
        "HookShown": {
            "type": "object",
            "description": "A hook as a hooks-file definition, secrets shown as ***.",
            "required": ["id", "source"],
            "properties": {"id": text, "source": {"enum": ["store", "hooks file"]}},
            "additionalProperties": True,
        },
        "Deleted": {
            "type": "object",
            "properties": {"deleted": text, "in_force": {"type": ["string", "null"]}},
        },
        "CloudEvent": {
            "type": "object",
            "required": ["specversion", "id", "type", "source"],
            "additionalProperties": True,
        },
        "TestRequest": {
            "type": "object",
            "required": ["event"],
            "properties": {
                "event": _ref("CloudEvent"),
                "send": {"type": "boolean", "default": False},
            },
        },
        "TestResult": {
            "type": "object",
            "properties": {
                "request": {"type": "object", "additionalProperties": True},
                "verdict": {"type": "object", "additionalProperties": True},
            },
        },
        "Outcomes": {
            "type": "object",
            "properties": {
                "hook_id": text,
                "outcomes": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
        },
        "DeadLetterCounts": {
            "type": "object",
            "properties": {
                "total": integer,
                "by_hook": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": integer},
                },
            },
        },
        "ReplayRequest": {
            "type": "object",
            "properties": {
                "hook": text,
                "since": {"type": "string", "description": "ISO 8601, or an age such as 2h."},
                "until": {"type": "string", "description": "ISO 8601, or an age such as 30m."},
                "error_kind": {"oneOf": [text, {"type": "array", "items": text}]},
                "limit": {"type": "integer", "minimum": 0},
                "rate": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "Letters per second.",
                },
                "dry_run": {"type": "boolean", "default": False},
            },
        },
        "Replay": {
            "type": "object",
            "properties": {
                "id": text,
                "status": {"enum": ["running", "done", "failed"]},
                "selection": {"type": "object", "additionalProperties": True},
                "rate": {"type": ["number", "null"]},
                "dry_run": {"type": "boolean"},
                "started_at": text,
                "finished_at": maybe_text,
                "summary": {"oneOf": [summary, {"type": "null"}]},
                "error": maybe_text,
                "plan": {"type": ["array", "null"], "items": {"type": "object"}},
            },
        },
        "ReplaySummary": summary,
    }


def _hook_schemas() -> dict[str, Any]:
    """The hooks schema's definitions, each `hooks.<name>`, references rewritten to match."""
    return {f"hooks.{name}": _rewrite(node) for name, node in hooks_schema()["$defs"].items()}


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_rewrite_ref(v) if k == "$ref" and isinstance(v, str) else _rewrite(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def _rewrite_ref(ref: str) -> str:
    prefix = "#/$defs/"
    return f"#/components/schemas/hooks.{ref[len(prefix) :]}" if ref.startswith(prefix) else ref
