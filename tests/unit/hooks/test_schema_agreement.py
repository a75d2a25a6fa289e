"""The schema, the loader and the sender agree on a hook definition.

What the JSON Schema accepts (as editors and the admin API's OpenAPI read it) loads, or is
refused naming the field and never showing a secret; what loads can be sent: its credentials
built, its request written and sent. Each fault found once is pinned by an example.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dispatcher.hooks.loader import (
    definition_problems,
    hook_from_definition,
    validate_hooks_text,
)
from dispatcher.hooks.schema import ecma_regex
from dispatcher.http.wire import parse_target, serialize
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request
from dispatcher.pipeline.request import build_request
from dispatcher.security.auth import Credentials, build_auth

SECRET = "s3cr3t-T0KEN-never-shown"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = Event(id="e1", type="a", source="/s", data={"x": 1, "phone": "+254700000000"})
BASE: dict[str, Any] = {"id": "h", "events": ["a"], "url": "https://x.example.com/p"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_T_TOKEN", SECRET)
    monkeypatch.setenv("HOOK_T_WHSEC", WHSEC)
    # as a Kubernetes secret made `--from-file` of a file ending in a newline sets it
    monkeypatch.setenv("HOOK_T_NEWLINE", SECRET + "\n")


def yaml_problems(lines: str) -> list[tuple[str, str]]:
    """(path, message) of each problem of a one-hook file with `lines` added to the hook."""
    text = "hooks:\n  - id: h\n    events: [a]\n" + "".join(
        f"    {line}\n" for line in lines.splitlines()
    )
    if "url:" not in lines:
        text += "    url: https://x.example.com/p\n"
    return [(p.path, p.message) for p in validate_hooks_text(text, "h.yaml") if not p.warning]


def sent(hook: Hook) -> Request:
    """The request as the worker writes it for EVENT: credentials added, head serialised."""
    request = build_request(hook, EVENT, "msg_1")
    auth = build_auth(hook.auth)
    if isinstance(auth, Credentials):
        request = auth.apply(request)
    serialize(request, parse_target(request.url))
    return request


# -- the schema's patterns, as JSON Schema (ECMA-262) reads them ------------------------------


def test_a_pattern_ends_at_the_end_of_the_text_not_before_a_final_newline() -> None:
    assert ecma_regex("^[a-z]+$").search("sms") is not None
    assert ecma_regex("^[a-z]+$").search("sms\n") is None
    assert ecma_regex("^[$a]+$").search("$a$") is not None  # `$` in a class is a dollar
    assert ecma_regex(r"^\d+$").search("٣") is None  # \d is an ASCII digit
    assert ecma_regex(r"^[\d.]+$").search("1.5") is not None
    assert ecma_regex(r"^\$\d$").search("$1") is not None  # an escaped `$` stays one


@pytest.mark.parametrize(
    ("lines", "path"),
    [
        ('tenant: "acme\\n"', "hooks[0].tenant"),
        ('headers: {"X-Order\\n": "1"}', 'hooks[0].headers["X-Order\n"]'),
        ('timeout: "٣s"', "hooks[0].timeout"),
        ('rate_limit: "٣/s"', "hooks[0].rate_limit"),
    ],
)
def test_what_an_editor_refuses_by_its_pattern_the_loader_refuses(lines: str, path: str) -> None:
    assert [p for p, _ in yaml_problems(lines)] == [path]


def test_an_id_with_a_final_newline_is_not_an_id() -> None:
    problems = definition_problems({**BASE, "id": "sms\n"}, "w")
    assert [(p.path, p.message.split(" is ")[1]) for p in problems] == [
        ("id", "not a valid id (use lower-case letters, digits, '.', '_', '-')")
    ]


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["0/s", "0.0/m", " 00 / h"])
def test_a_rate_of_nothing_is_refused_as_the_number_0_is(rate: str) -> None:
    """The sender reads a rate of 0 as no rate: every request at once."""
    message = f"{json.dumps(rate)} is not a rate above 0 (use e.g. 20/s, 600/m)"
    assert yaml_problems(f'rate_limit: "{rate}"') == [("hooks[0].rate_limit", message)]
    assert [p for p, _ in yaml_problems("rate_limit: 0")] == ["hooks[0].rate_limit"]


@pytest.mark.parametrize(("rate", "per_second"), [("0.5/s", 0.5), ("30/m", 0.5), ("10/s", 10)])
def test_a_rate_above_0_loads(rate: str, per_second: float) -> None:
    assert hook_from_definition({**BASE, "rate_limit": rate}, "w").rate_limit == per_second


# -- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "found"),
    [
        ({"type": "hmac"}, "neither"),
        ({"type": "hmac", "secret": WHSEC, "secrets": [WHSEC]}, "secret and secrets"),
    ],
)
def test_hmac_takes_exactly_one_of_secret_and_secrets(auth: dict[str, Any], found: str) -> None:
    problems = definition_problems({**BASE, "auth": auth}, "w")
    assert [(p.path, p.message) for p in problems] == [
        ("auth", f"give exactly one of secret or secrets (found {found})")
    ]
    assert WHSEC.removeprefix("whsec_") not in str(problems)


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "hmac", "secret": "${env:HOOK_T_WHSEC}"},
        {"type": "hmac", "secrets": ["${env:HOOK_T_WHSEC}", WHSEC]},
    ],
)
def test_a_hmac_hook_that_loads_signs(auth: dict[str, Any]) -> None:
    request = sent(hook_from_definition({**BASE, "auth": auth}, "w"))
    assert request.header("webhook-signature") is not None


@pytest.mark.parametrize("name", ["X Api Key", "X-Api-Key\n", "X-Api-Key:"])
def test_an_api_key_in_a_header_is_named_as_a_header_is(name: str) -> None:
    auth = {"type": "api_key", "name": name, "value": "${env:HOOK_T_TOKEN}"}
    assert [p.path for p in definition_problems({**BASE, "auth": auth}, "w")] == ["auth.name"]
    in_query = {**auth, "in": "query"}
    assert parse_target(sent(hook_from_definition({**BASE, "auth": in_query}, "w")).url)


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"url": f"htps://user:{SECRET}@x.example.com/p"}, "url"),
        ({"url": f"https//x.example.com/p?api_key={SECRET}"}, "url"),
        (
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": f"ftp://client:{SECRET}@auth.example.com/token",
                    "client_id": "c",
                    "client_secret": "${env:HOOK_T_TOKEN}",
                }
            },
            "auth.token_url",
        ),
    ],
)
def test_a_refused_url_is_shown_masked(definition: dict[str, Any], path: str) -> None:
    problems = definition_problems({**BASE, **definition}, "w")
    assert path in [p.path for p in problems]
    assert SECRET not in str(problems)
    assert "***" in next(p.message for p in problems if p.path == path)
