"""The hooks JSON Schema (shipped in the package) and its findings as (path, message) pairs.

`schemas/hooks.schema.json` at the top of the repository is the one source: editors point at
it, and the package reads it as `dispatcher/schemas/hooks.schema.json` (`dispatcher/schemas`
links to `schemas/`, and setuptools copies the files into wheels as package data).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from dispatcher.hooks.masking import mask_url
from dispatcher.pipeline.render.paths import Path

Finding = tuple[Path, str]
SECRET_KEYS = frozenset({"password", "token", "value", "client_secret", "secret", "secrets", "key"})
SHOWN = 60


@cache
def hooks_schema() -> dict[str, Any]:
    """The schema of a hooks file (draft 2020-12)."""
    text = files("dispatcher").joinpath("schemas/hooks.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(definition: str | None) -> Draft202012Validator:
    schema = hooks_schema()
    if definition is not None:
        schema = {**schema, "$ref": f"#/$defs/{definition}"}
        for key in ("properties", "required", "additionalProperties", "type"):
            schema.pop(key, None)
    return _EcmaValidator(schema)


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` read as JSON Schema reads it (ECMA-262), as editors and the OpenAPI's users do:
    there `$` ends the text and `\\d` is an ASCII digit; in Python's `re`, `$` also matches
    before a final newline (so `id: "sms\\n"` would pass `^[a-z0-9._-]+$`) and `\\d` is any
    Unicode digit. Only those two differ in the schema's patterns; they are rewritten."""
    out: list[str] = []
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
            out.append(("0-9" if in_class else "[0-9]") if ch == "d" else "\\" + ch)
        elif ch == "\\":
            escaped = True
        else:
            in_class = (ch == "[") or (in_class and ch != "]")
            out.append("\\Z" if ch == "$" and not in_class else ch)
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """The `pattern` keyword with ECMA-262 semantics (`ecma_regex`)."""
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_EcmaValidator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)


def file_findings(document: Any) -> list[Finding]:
    """Everything the schema says is wrong with a whole hooks document."""
    return _findings(_validator(None), document)


def hook_findings(definition: Any) -> list[Finding]:
    """Everything the schema says is wrong with one hook definition."""
    return _findings(_validator("hook"), definition)


def _findings(validator: Draft202012Validator, document: Any) -> list[Finding]:
    found: dict[Finding, None] = {}
    for error in validator.iter_errors(document):
        for finding in _explain(error):
            found.setdefault(finding)
    return list(found)


def _explain(error: ValidationError) -> Iterator[Finding]:
    path: Path = tuple(error.absolute_path)
    instance, value = error.instance, _known(error.validator_value)
    secret = any(isinstance(step, str) and step in SECRET_KEYS for step in path)
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = [str(key) for key in schema.get("properties", {})]
        for key in instance:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                known = (
                    f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(allowed)}"
                )
                yield (*path, key), f"unknown key {key!r} ({known})"
        return
    if error.validator == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                # named by its own path, on the line of the mapping that lacks it
                yield (*path, key), "missing required key"
        return
    if error.validator in ("enum", "const"):
        choices: list[Any] = value if error.validator == "enum" else [value]
        shown = "" if secret else f"{_show(instance)} is not allowed; "
        yield path, f"{shown}use one of: {', '.join(str(c) for c in choices)}"
        return
    if error.validator == "type":
        kinds = value if isinstance(value, list) else [value]
        yield path, f"must be {' or '.join(_article(str(k)) for k in kinds)}"
        return
    if "propertyNames" in error.relative_schema_path:
        yield (*path, str(instance)), f"{_show(instance)} is not a valid name here"
        return
    if error.validator == "pattern":
        name = str(path[-1]) if path else ""
        # a URL as hooks are shown: its userinfo and credential-like query values masked
        written = mask_url(str(instance)) if name in _URLS else instance
        shown = "the value" if secret else _show(written)
        yield path, f"{shown} {_PATTERN_HINTS.get(name, 'is malformed')}"
        return
    if error.validator == "oneOf" and isinstance(instance, dict):
        yield path, _one_of(value, instance)
        return
    if error.validator == "minItems" and value == 1:
        yield path, "must not be empty"
        return
    if secret:
        yield path, f"fails the {error.validator} rule"
        return
    yield path, error.message


def _one_of(choices: list[Any], instance: dict[str, Any]) -> str:
    """The message of a `oneOf` between keys (`{"required": [key]}` each): which were given,
    never their values (they may be secrets)."""
    keys = [key for choice in choices for key in choice.get("required", ())]
    given = [key for key in keys if key in instance]
    found = " and ".join(given) if given else "neither"
    return f"give exactly one of {' or '.join(keys)} (found {found})"


_URLS = ("url", "token_url")
_PATTERN_HINTS = {
    "id": "is not a valid id (use lower-case letters, digits, '.', '_', '-'; not '.' or '..')",
    "url": "is not an http(s) URL with a host",
    "token_url": "is not an http(s) URL",
    "timeout": "is not a duration (use e.g. 500ms, 10s, 5m, 1h)",
    "max_age": "is not a duration (use e.g. 30m, 24h, 7d)",
    "pause_after": "is not a duration (use e.g. 30m, 24h; 0: never)",
    "window": "is not a duration (use e.g. 30s, 1m)",
    "open_for": "is not a duration (use e.g. 15s, 1m)",
    "rate_limit": "is not a rate above 0 (use e.g. 20/s, 600/m)",
    "name": "is not a header name (letters, digits and !#$%&'*+.^_`|~-)",  # auth.name, in a header
    "tenant": "is not a valid tenant (letters, digits, '.', '_', '-'; at most 128)",
}


def _known(value: Any) -> Any:
    """A schema keyword's value (jsonschema types it loosely)."""
    return value


def _article(kind: str) -> str:
    return {"integer": "an integer", "object": "a mapping", "array": "a list"}.get(
        kind, f"a {kind}"
    )


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
