"""The schema, the loader and the sender agree on a hook definition.

What the JSON Schema accepts (as editors and the admin API's OpenAPI read it) loads, or is
refused naming the field and never showing a secret; what loads can be sent: its credentials
built, its request written and sent. Each fault found once is pinned by an example.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dispatcher.errors import ConfigError
from dispatcher.hooks.describe import describe
from dispatcher.hooks.loader import (
    definition_problems,
    hook_from_definition,
    load_hooks_text,
    validate_hooks_text,
)
from dispatcher.hooks.schema import ecma_regex
from dispatcher.http.sender import HookClient
from dispatcher.http.wire import parse_target, serialize
from dispatcher.model.event import Event
from dispatcher.model.hook import CircuitSpec, Hook
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
    monkeypatch.setenv("HOOK_T_ESCAPE", SECRET + "\x1b")
    monkeypatch.setenv("HOOK_T_DEL", "\x7f" + SECRET)
    monkeypatch.setenv("HOOK_T_TAB", SECRET + "\t" + SECRET)


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
        ('headers: {"X-Order\\n": "1"}', 'hooks[0].headers["X-Order\\n"]'),
        ('timeout: "٣s"', "hooks[0].timeout"),
        ('rate_limit: "٣/s"', "hooks[0].rate_limit"),
    ],
)
def test_what_an_editor_refuses_by_its_pattern_the_loader_refuses(lines: str, path: str) -> None:
    assert [p for p, _ in yaml_problems(lines)] == [path]


def test_an_id_with_a_final_newline_is_not_an_id() -> None:
    problems = definition_problems({**BASE, "id": "sms\n"}, "w")
    assert [(p.path, p.message.split(" is ")[1]) for p in problems] == [
        ("id", "not a valid id (use lower-case letters, digits, '.', '_', '-'; not '.' or '..')")
    ]


@pytest.mark.parametrize("hook_id", [".", ".."])
def test_an_id_that_an_address_resolves_away_is_not_an_id(hook_id: str) -> None:
    """/hooks/../edit is /edit to a browser: such a hook could not be shown or edited."""
    problems = definition_problems({**BASE, "id": hook_id}, "w")
    assert [(p.path, p.message.split(" is ", 1)[1]) for p in problems] == [
        ("id", "not a valid id (use lower-case letters, digits, '.', '_', '-'; not '.' or '..')")
    ]
    assert definition_problems({**BASE, "id": "..."}, "w") == []  # no address resolves it


@pytest.mark.parametrize("nothing", [0, "0", "0s", "0ms"])
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("timeout", "must be above 0: no attempt could finish in no time"),
        ("circuit.window", "must be 1s or more: the breaker counts attempts in thirtieths of it"),
        ("circuit.open_for", "must be above 0: an open circuit would never hold a call back"),
    ],
)
def test_a_duration_of_nothing_is_refused_where_it_means_nothing(
    nothing: Any, path: str, message: str
) -> None:
    """No attempt can finish in no time (every delivery would time out); a circuit's window of
    no time counts nothing, and an open circuit that is open for no time holds nothing back."""
    assert _problems_of(path, nothing) == [(path, message)]


@pytest.mark.parametrize("window", ["999ms", 2.225073858507e-311])  # the second overflowed
def test_a_circuits_window_under_a_second_is_refused(window: Any) -> None:
    assert [path for path, _ in _problems_of("circuit.window", window)] == ["circuit.window"]
    assert _problems_of("circuit.window", "1s") == []


def _problems_of(path: str, value: Any) -> list[tuple[str, str]]:
    """(path, message) of each problem of BASE with `value` at `path` (`a` or `a.b`)."""
    first, _, second = path.partition(".")
    raw = {first: {second: value}} if second else {first: value}
    return [(p.path, p.message) for p in definition_problems({**BASE, **raw}, "w")]


@pytest.mark.parametrize(
    ("lines", "path"),
    [
        ("circuit: {failure_ratio: 0}", "hooks[0].circuit.failure_ratio"),
        ("circuit: {failure_ratio: 1.5}", "hooks[0].circuit.failure_ratio"),
        ("circuit: {minimum_calls: 0}", "hooks[0].circuit.minimum_calls"),
        ("circuit: {probes: 0}", "hooks[0].circuit.probes"),
        ("circuit: {window: soon}", "hooks[0].circuit.window"),
        ("circuit: {open_for: -5s}", "hooks[0].circuit.open_for"),
        ("circuit: {open: 5s}", "hooks[0].circuit.open"),
    ],
)
def test_a_circuit_setting_out_of_its_range_is_refused_at_its_path(lines: str, path: str) -> None:
    assert [p for p, _ in yaml_problems(lines)] == [path]


def test_a_hooks_circuit_settings_load_and_show_as_written() -> None:
    circuit = {"failure_ratio": 0.25, "minimum_calls": 5, "window": "1m", "open_for": "2s"}
    hook = hook_from_definition({**BASE, "circuit": {**circuit, "probes": 1}}, "w")
    assert hook.circuit == CircuitSpec(
        failure_ratio=0.25, minimum_calls=5, window=60.0, open_for=2.0, probes=1
    )
    shown = describe(hook)["circuit"]
    assert dict(shown) == {**circuit, "probes": 1}
    assert hook_from_definition({**BASE, "circuit": dict(shown)}, "w").circuit == hook.circuit
    assert "circuit" not in describe(hook_from_definition(BASE, "w"))  # the defaults


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "path"),
    [
        ("timeout: .nan", "hooks[0].timeout"),
        ("timeout: .inf", "hooks[0].timeout"),
        ("pause_after: .nan", "hooks[0].pause_after"),
        ("retry: {max_age: .inf}", "hooks[0].retry.max_age"),
        ("rate_limit: .nan", "hooks[0].rate_limit"),
        ("fields: [{name: amount, value: .nan}]", "hooks[0].fields[0].value"),
        ("filter: [{path: data.total, gt: .nan}]", "hooks[0].filter[0].gt"),
    ],
)
def test_nan_and_infinity_are_refused_at_their_path(lines: str, path: str) -> None:
    assert yaml_problems(lines) == [
        (path, "must be a finite number (NaN and infinity are not allowed)")
    ]


def _read_as(sent: str, written: str) -> str:
    return f'is read as the number {sent}: quote it ("{written}") to send it as written'


@pytest.mark.parametrize(
    ("lines", "path", "message"),
    [
        ("headers: {X-Version: 1.10}", "hooks[0].headers.X-Version", _read_as("1.1", "1.10")),
        ("headers: {X-Zip: 01234}", "hooks[0].headers.X-Zip", _read_as("1234", "01234")),
        ("headers: {X-Count: 1e3}", "hooks[0].headers.X-Count", _read_as("1000.0", "1e3")),
        ("headers: {X-Code: 0x1F}", "hooks[0].headers.X-Code", _read_as("31", "0x1F")),
        ("fields: [{name: v, value: 1.10}]", "hooks[0].fields[0].value", _read_as("1.1", "1.10")),
        (
            "fields: [{name: v, value: 1.10, type: string}]",
            "hooks[0].fields[0].value",
            _read_as("1.1", "1.10"),
        ),
        (
            "fields: [{name: v, value: 1.10, type: decimal}]",
            "hooks[0].fields[0].value",
            _read_as("1.1", "1.10"),
        ),
        (
            "fields: [{name: v, value: 01234}]",
            "hooks[0].fields[0].value",
            _read_as("1234", "01234"),
        ),
        (
            "fields: [{name: v, from: data.v, default: 01234, type: string}]",
            "hooks[0].fields[0].default",
            _read_as("1234", "01234"),
        ),
    ],
)
def test_a_yaml_number_that_would_be_sent_rewritten_is_refused_at_its_path(
    lines: str, path: str, message: str
) -> None:
    """YAML reads `1.10` as 1.1 and `01234` as 1234: they went out so, silently."""
    assert yaml_problems(lines) == [(path, message)]


@pytest.mark.parametrize(
    ("lines", "header", "body"),
    [
        ('headers: {X-Version: "1.10"}', "1.10", None),
        ("headers: {X-Version: 2}", "2", None),
        ("headers: {X-Version: 1.5}", "1.5", None),
        ("headers: {X-Version: true}", "true", None),  # a boolean is written as JSON writes it
        ("fields: [{name: v, value: 1.5}]", None, b'{"v":1.5}'),
        ("fields: [{name: v, value: 2, type: string}]", None, b'{"v":"2"}'),
        ('fields: [{name: v, value: "1.10", type: decimal}]', None, b'{"v":1.10}'),
        ("fields: [{name: v, value: 1.50, type: decimal, format: '0.00'}]", None, b'{"v":1.50}'),
        (
            "fields: [{name: v, value: 01234, type: integer}]",
            None,
            b'{"v":1234}',
        ),  # 1234 either way
        ("fields: [{name: v, value: 1e3, type: integer}]", None, b'{"v":1000}'),
    ],
)
def test_a_yaml_number_sent_as_written_or_as_its_type_says_loads(
    lines: str, header: str | None, body: bytes | None
) -> None:
    assert yaml_problems(lines) == []
    text = f"hooks:\n  - id: h\n    events: [a]\n    url: https://x.example.com/p\n    {lines}\n"
    request = sent(load_hooks_text(text, "h.yaml")[0])
    if header is not None:
        assert request.header("X-Version") == header
    if body is not None:
        assert request.content == body


@pytest.mark.parametrize("rate", ["0/s", "0.0/m", " 00 / h"])
def test_a_rate_of_nothing_is_refused_as_the_number_0_is(rate: str) -> None:
    """The sender reads a rate of 0 as no rate: every request at once."""
    message = f"{json.dumps(rate)} is not a rate above 0 (use e.g. 20/s, 600/m)"
    assert yaml_problems(f'rate_limit: "{rate}"') == [("hooks[0].rate_limit", message)]
    assert [p for p, _ in yaml_problems("rate_limit: 0")] == ["hooks[0].rate_limit"]


@pytest.mark.parametrize(("rate", "per_second"), [("0.5/s", 0.5), ("30/m", 0.5), ("10/s", 10)])
def test_a_rate_above_0_loads(rate: str, per_second: float) -> None:
    assert hook_from_definition({**BASE, "rate_limit": rate}, "w").rate_limit == per_second


def test_a_url_with_port_0_is_refused_as_port_0_is() -> None:
    """A client reads port 0 as no port: the request would go to 443."""
    url = "https://x.example.com:0/p"
    assert yaml_problems(f"url: {url}") == [
        ("hooks[0].url", "port 0 is not a port (use 1 to 65535)")
    ]
    assert [p for p, _ in yaml_problems("port: 0")] == ["hooks[0].port"]


def test_a_port_written_with_a_zero_fraction_is_that_port() -> None:
    """8443.0 is an integer to JSON Schema (and what some JSON writers send for 8443)."""
    hook = hook_from_definition({**BASE, "port": 8443.0}, "w")
    assert hook.url == "https://x.example.com:8443/p"
    assert parse_target(sent(hook).url).port == 8443


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
        ({"auth": {"type": "bearer", "token": "${env:HOOK_T_NEWLINE}"}}, "auth.token"),
        (
            {"auth": {"type": "api_key", "name": "K", "value": "${env:HOOK_T_NEWLINE}"}},
            "auth.value",
        ),
        ({"auth": {"type": "bearer", "token": "tök\u20acn"}}, "auth.token"),
        ({"headers": {"X-Key": "${env:HOOK_T_NEWLINE}"}}, "headers.X-Key"),
        ({"headers": {"X-Key": "${env:HOOK_T_ESCAPE}"}}, "headers.X-Key"),
        ({"headers": {"X-Key": "${env:HOOK_T_DEL}"}}, "headers.X-Key"),
        ({"auth": {"type": "bearer", "token": "${env:HOOK_T_ESCAPE}"}}, "auth.token"),
        (
            {"auth": {"type": "api_key", "name": "K", "value": "${env:HOOK_T_DEL}"}},
            "auth.value",
        ),
    ],
)
def test_a_secret_no_header_can_carry_is_refused_at_load_unshown(
    definition: dict[str, Any], path: str
) -> None:
    """Not at every request, each refused before it is sent."""
    problems = definition_problems({**BASE, **definition}, "w")
    assert [p.path for p in problems] == [path]
    assert "cannot be sent in a header" in problems[0].message
    assert SECRET not in str(problems)


def test_an_api_key_in_the_query_may_hold_what_the_query_encodes() -> None:
    auth = {"type": "api_key", "name": "key", "value": "${env:HOOK_T_NEWLINE}", "in": "query"}
    request = sent(hook_from_definition({**BASE, "auth": auth}, "w"))
    assert request.url.endswith("?key=s3cr3t-T0KEN-never-shown%0A")


def test_a_header_value_with_a_nul_is_refused_at_load() -> None:
    assert yaml_problems('headers: {X-A: "a\\0b"}') == [
        ("hooks[0].headers.X-A", "a header value cannot hold a line break or NUL")
    ]


@pytest.mark.parametrize("value", ["a\\eb", "a\\x7fb", "\\x01"])
def test_a_header_value_with_a_control_character_is_refused_at_load(value: str) -> None:
    """As a placeholder's value is at render: a receiver answers such a request 400."""
    assert yaml_problems(f'headers: {{X-A: "{value}"}}') == [
        ("hooks[0].headers.X-A", "a header value cannot hold a control character other than tab")
    ]


def test_a_header_value_with_a_tab_loads_and_is_sent() -> None:
    raw = {**BASE, "headers": {"X-A": "a\tb", "X-Key": "${env:HOOK_T_TAB}"}}
    assert definition_problems(raw, "w") == []
    request = sent(hook_from_definition(raw, "w"))
    assert (request.header("X-A"), request.header("X-Key")) == ("a\tb", f"{SECRET}\t{SECRET}")


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


# -- secret references ---------------------------------------------------------------------

WHOLE = "a secret reference must be the whole value (within a value it is sent as written)"


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"fields": [{"name": "acct", "value": "ACC-${env:HOOK_T_TOKEN}"}]}, "fields[0].value"),
        ({"headers": {"X-Acct": "ACC-${env:HOOK_T_TOKEN}"}}, "headers.X-Acct"),
        ({"headers": {"X-Acct": "{data.x}-${env:HOOK_T_TOKEN}"}}, "headers.X-Acct"),
        ({"auth": {"type": "bearer", "token": "t-${env:HOOK_T_TOKEN}"}}, "auth.token"),
        (
            {"auth": {"type": "api_key", "name": "X-Key", "value": "${env:HOOK_T_TOKEN}!"}},
            "auth.value",
        ),
        (
            {"auth": {"type": "hmac", "secrets": ["${env:HOOK_T_WHSEC}", "x${env:HOOK_T_WHSEC}"]}},
            "auth.secrets[1]",
        ),
        (
            {"encryption": {"algorithm": "A256GCM", "key": "k${env:HOOK_T_TOKEN}"}},
            "encryption.key",
        ),
    ],
)
def test_a_secret_reference_within_a_value_is_refused_at_load_unshown(
    definition: dict[str, Any], path: str
) -> None:
    """Only the URL resolves a reference within its text; anywhere else it went out as written,
    `${env:NAME}` and all."""
    problems = definition_problems({**BASE, **definition}, "w")
    assert (path, WHOLE) in [(p.path, p.message) for p in problems]
    assert SECRET not in str(problems)
    with pytest.raises(ConfigError):
        hook_from_definition({**BASE, **definition}, "w")


def test_a_secret_reference_within_a_field_constant_is_refused_at_its_line() -> None:
    assert yaml_problems('fields: [{name: acct, value: "ACC-${env:HOOK_T_TOKEN}"}]') == [
        ("hooks[0].fields[0].value", WHOLE)
    ]


def test_a_field_default_that_is_a_secret_reference_is_refused_as_it_would_go_out_as_written() -> (
    None
):
    spec = {"name": "acct", "from": "data.acct", "default": "${env:HOOK_T_TOKEN}"}
    assert [(p.path, p.message) for p in definition_problems({**BASE, "fields": [spec]}, "w")] == [
        (
            "fields[0].default",
            "a default is sent as written: a secret reference is resolved only in value",
        )
    ]


def test_a_whole_secret_reference_is_still_sent_as_its_value() -> None:
    raw = {
        **BASE,
        "headers": {"X-Acct": "${env:HOOK_T_TOKEN}"},
        "fields": [{"name": "acct", "value": "${env:HOOK_T_TOKEN}"}],
        "url": "https://x.example.com/p/${env:HOOK_T_TOKEN}?a=x${env:HOOK_T_TOKEN}",
    }
    assert definition_problems(raw, "w") == []
    request = sent(hook_from_definition(raw, "w"))
    assert request.header("X-Acct") == SECRET
    assert json.loads(request.content) == {"acct": SECRET}
    assert request.url.endswith(f"/p/{SECRET}?a=x{SECRET}")  # the URL's within its text


# -- whatever loads can be sent ----------------------------------------------------------------

DURATIONS = st.one_of(
    st.floats(min_value=0, max_value=1e6),
    st.sampled_from([float("nan"), float("inf"), "30s", "500ms", "1.5h", "0", "0s", "٣s"]),
)
RATES = st.one_of(
    st.floats(min_value=0, max_value=1e6),
    st.sampled_from([float("nan"), "20/s", "600/m", "0/s", "0.0/h", "0.5/s"]),
)
HEADERS = st.dictionaries(
    st.sampled_from(["X-A", "X-A\n", "Accept", "X-Key", "X Y"]),
    st.sampled_from(
        ["v", "a\x00b", 7, True, "{data.x}", "${env:HOOK_T_TOKEN}", "${env:HOOK_T_NEWLINE}"]
    ),
    max_size=3,
)
AUTHS = st.sampled_from(
    [
        {"type": "none"},
        {"type": "bearer", "token": "${env:HOOK_T_TOKEN}"},
        {"type": "bearer", "token": "${env:HOOK_T_NEWLINE}"},
        {"type": "basic", "username": "u", "password": "${env:HOOK_T_NEWLINE}"},
        {"type": "api_key", "name": "X-Key", "value": "${env:HOOK_T_TOKEN}"},
        {"type": "api_key", "name": "X Key", "value": "${env:HOOK_T_TOKEN}"},
        {"type": "api_key", "name": "k", "value": "${env:HOOK_T_NEWLINE}", "in": "query"},
        {"type": "hmac"},
        {"type": "hmac", "secret": "${env:HOOK_T_WHSEC}"},
        {"type": "hmac", "secrets": ["${env:HOOK_T_WHSEC}"]},
        {"type": "hmac", "secret": WHSEC, "secrets": [WHSEC]},
    ]
)
FIELD_SPECS: list[dict[str, Any]] = [
    {"name": "to", "from": "data.phone"},
    {"name": "n", "value": float("nan")},
    {"name": "n", "value": 1.5},
    {"name": "t", "template": "x={data.x}"},
]
FIELDS = st.lists(st.sampled_from(FIELD_SPECS), max_size=2, unique_by=lambda f: f["name"])
SETTINGS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["h", "h\n", "sms-ke.1"]),
    "tenant": st.sampled_from(["acme", "acme\n"]),
    "url": st.sampled_from(
        ["https://x.example.com/p", "https://x.example.com:0/p", "http://x.example.com/{data.x}"]
    ),
    "port": st.sampled_from([1, 8443, 8443.0, 65535]),
    "method": st.sampled_from(["POST", "PUT", "PATCH"]),
    "headers": HEADERS,
    "auth": AUTHS,
    "format": st.sampled_from(["json", "csv", "xml", "form"]),
    "fields": FIELDS,
    "timeout": DURATIONS,
    "retry": st.fixed_dictionaries({"max_age": DURATIONS}),
    "pause_after": DURATIONS,
    "rate_limit": RATES,
    "circuit": st.fixed_dictionaries({"window": DURATIONS, "open_for": DURATIONS}),
}


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(sorted(SETTINGS)), unique=True, max_size=5))
    return {**BASE, **{key: draw(SETTINGS[key]) for key in chosen}}


async def _attempt(hook: Hook, request: Request) -> str | None:
    client = HookClient(hook, httpx.MockTransport(lambda _: httpx.Response(200)))
    try:
        return (await client.send(request)).verdict.kind
    finally:
        await client.aclose()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
@example({**BASE, "timeout": float("nan")})
@example({**BASE, "timeout": float("inf")})
@example({**BASE, "auth": {"type": "hmac"}})
@example({**BASE, "port": 8443.0})
@example({**BASE, "headers": {"X-A\n": "v"}})
@example({**BASE, "headers": {"X-A": "a\x00b"}})
@example({**BASE, "auth": {"type": "bearer", "token": "${env:HOOK_T_NEWLINE}"}})
@example({**BASE, "auth": {"type": "api_key", "name": "X Key", "value": "${env:HOOK_T_TOKEN}"}})
@example({**BASE, "rate_limit": "0/s"})
def test_a_definition_is_refused_at_its_fields_or_loads_and_sends(raw: dict[str, Any]) -> None:
    problems = [p for p in definition_problems(raw, "w") if not p.warning]
    assert all(p.path for p in problems), problems
    assert SECRET not in str(problems)
    if problems:
        with pytest.raises(ConfigError):
            hook_from_definition(raw, "w")
        return
    hook = hook_from_definition(raw, "w")
    assert hook.rate_limit is None or hook.rate_limit > 0  # 0 would be read as no limit
    request = sent(hook)  # EVENT holds every path the strategies name
    assert asyncio.run(_attempt(hook, request)) in (None, "timeout")


def test_the_loader_and_load_hooks_text_agree_on_a_refusal() -> None:
    text = 'hooks:\n  - {id: h, events: [a], url: "https://x.example.com/p", timeout: .nan}\n'
    with pytest.raises(ConfigError, match=r"hooks\[0\]\.timeout: must be a finite number"):
        load_hooks_text(text, "h.yaml")
