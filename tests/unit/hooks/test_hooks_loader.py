"""Loading and validating hooks: every problem at once, with lines; secrets kept out of sight."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from tls_support import issue_pki

from dispatcher.cli.output import hook_table, hook_yaml, validation_report
from dispatcher.config.secrets import Secret
from dispatcher.errors import ConfigError, RenderError
from dispatcher.hooks.loader import (
    Problem,
    definition_problems,
    hook_from_definition,
    load_hooks_file,
    load_hooks_text,
    validate_hooks_text,
)
from dispatcher.hooks.masking import mask_url
from dispatcher.model.event import Event
from dispatcher.model.request import Request
from dispatcher.pipeline.render import render_body
from dispatcher.pipeline.request import build_body, build_request
from dispatcher.security.auth import Credentials, build_auth
from dispatcher.security.encryption import b64u_decode

ROOT = Path(__file__).resolve().parents[3]
BROKEN = ROOT / "tests" / "data" / "broken-hooks.yaml"
GOOD = """\
hooks:
  - id: sms
    events: [order.*]
    url: https://sms.example.com/send
    port: 8443
    auth: {type: basic, username: u, password: "${env:DUGAA_TEST_PASSWORD}"}
    format: form
    fields:
      - {name: to, from: data.phone, required: true}
    rate_limit: 20/s
    timeout: 5s
"""
SECRET_VALUE = "s3cr3t-VALUE-never-shown"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUGAA_TEST_PASSWORD", SECRET_VALUE)
    monkeypatch.delenv("DUGAA_TEST_UNSET_TOKEN", raising=False)


def problems(text: str, *, warnings: bool = False) -> list[tuple[int | None, str, str]]:
    found = validate_hooks_text(text, "h.yaml", warnings=warnings)
    return [(p.line, p.path, p.message) for p in found]


def test_a_good_file_loads_into_typed_hooks() -> None:
    [hook] = load_hooks_text(GOOD, "h.yaml")
    assert hook.url == "https://sms.example.com:8443/send"
    assert hook.auth.get("password") == Secret(SECRET_VALUE)
    assert (hook.rate_limit, hook.timeout, hook.format) == (20.0, 5.0, "form")
    assert validate_hooks_text(GOOD, "h.yaml") == []


BROKEN_EXPECTED = [
    (7, "hooks[0].mehtod", "unknown key 'mehtod' (did you mean 'method'?)"),
    (11, "hooks[0].fields[1].template", "unpaired '{'"),
    (12, "hooks[0].fields[2]", "exactly one of from, value or template (found none)"),
    (13, "hooks[0].fields[3]", "(found from and value)"),
    (14, "hooks[0].timeout", "is not a duration"),
    (15, "hooks[1].id", "duplicate id 'sms-gateway' (first at line 4)"),
    (16, "hooks[1].events[0]", "unbalanced '['"),
    (17, "hooks[1].url", "is not an http(s) URL"),
    (18, "hooks[1].method", "use one of: POST, PUT, PATCH"),
    (19, "hooks[1].format", "use one of: json, csv, xml, form"),
    (22, "hooks[1].auth.token", "hook sms-gateway: cannot resolve secret: environment variable"),
    (26, "hooks[1].response.expect[0]", "checks nothing"),
    (27, "hooks[1].response.expect[1].matches", "invalid regular expression"),
    (28, "hooks[2].id", "is not a valid id"),
    (29, "hooks[2].events", "must not be empty"),
    (31, "hooks[2].encryption.key", "A256GCM needs a 32-byte key"),
    (32, "hooks[2].retry.max_attempts", "less than the minimum of 1"),
]


def test_broken_file_reports_every_mistake_on_its_line() -> None:
    found = validate_hooks_text(BROKEN.read_text(), "broken-hooks.yaml")
    assert [(p.line, p.path) for p in found] == [(line, path) for line, path, _ in BROKEN_EXPECTED]
    for problem, (_, _, message) in zip(found, BROKEN_EXPECTED, strict=True):
        assert message in problem.message


def test_load_hooks_file_raises_with_all_problems_one_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_hooks_file(BROKEN)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(BROKEN_EXPECTED)
    assert lines[0] == f"{BROKEN}:7: hooks[0].mehtod: unknown key 'mehtod' (did you mean 'method'?)"


def test_problem_reads_file_line_path_message() -> None:
    assert str(Problem("f.yaml", 3, "hooks[1].url", "bad")) == "f.yaml:3: hooks[1].url: bad"
    assert str(Problem("topic@7", None, "", "bad")) == "topic@7: bad"
    assert str(Problem("f", 1, "p", "odd", warning=True)) == "f:1: p: warning: odd"


def test_missing_key_is_named_by_its_path_on_the_line_of_its_mapping() -> None:
    text = "hooks:\n  - id: a\n    events: [x]\n  - id: b\n    events: [x]\n"
    assert problems(text) == [
        (2, "hooks[0].url", "missing required key"),
        (4, "hooks[1].url", "missing required key"),
    ]


def test_yaml_syntax_error_names_its_line() -> None:
    [(line, _, message)] = problems("hooks:\n  - id: a\n    events: [x\n  url: y\n")
    assert line == 4
    assert message.startswith("invalid YAML")


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (100, "cannot be checked: nests deeper than 64 levels"),
        (400, "cannot be read: it nests too deeply"),
    ],
)
def test_a_file_nested_too_deeply_is_one_problem_not_a_crash(levels: int, message: str) -> None:
    value = "[" * levels + "]" * levels
    text = f"hooks:\n  - {{id: a, events: [x], url: 'https://a.example.com/', x: {value}}}\n"
    assert problems(text) == [(None, "", message)]


def test_a_file_whose_aliases_expand_past_its_text_is_one_problem() -> None:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 6):  # 10**5 values behind the last alias
        text += f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n"
    said = "cannot be checked: its aliases expand to more than 10 values per character written"
    assert problems(f"{text}hooks: *a5\n") == [(None, "", said)]
    shared = "retry: &r {max_attempts: 3}\nhooks:\n" + "".join(
        f"  - {{id: h{i}, events: [x], url: 'https://a.example.com/', retry: *r}}\n"
        for i in range(50)
    )
    assert all("aliases" not in m for _, _, m in problems(shared))


def test_duplicate_yaml_key_is_an_error() -> None:
    [(line, _, message)] = problems("hooks:\n  - id: a\n    id: b\n    events: [x]\n")
    assert line == 3
    assert "duplicate key" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must be a mapping"),
        ("hooks: {}\n", "must be a list"),
        ("hook: []\n", "unknown key 'hook' (did you mean 'hooks'?)"),
    ],
)
def test_wrong_top_level_shapes(text: str, message: str) -> None:
    assert any(message in m for _, _, m in problems(text))


def test_auth_keys_are_checked_per_type() -> None:
    text = GOOD.replace("username: u,", "user: u,")
    assert problems(text) == [
        (6, "hooks[0].auth.username", "missing required key"),
        (6, "hooks[0].auth.user", "unknown key 'user' (did you mean 'username'?)"),
    ]


def test_secret_values_never_appear_in_problems() -> None:
    text = GOOD.replace('"${env:DUGAA_TEST_PASSWORD}"', "12345678901")
    text += '    encryption: {algorithm: A128GCM, key: "${env:DUGAA_TEST_PASSWORD}"}\n'
    found = "\n".join(str(p) for p in validate_hooks_text(text, "h.yaml"))
    assert "hooks[0].auth.password: must be a string" in found
    assert "hooks[0].encryption.key: A128GCM needs a 16-byte key" in found
    assert "12345678901" not in found
    assert SECRET_VALUE not in found


def test_field_checks_beyond_the_schema() -> None:
    text = GOOD.replace(
        "      - {name: to, from: data.phone, required: true}\n",
        "      - {name: a, value: x, type: integer}\n"
        "      - {name: b, from: data.t, format: '%Y'}\n"
        "      - {name: c, from: data.t, type: decimal, format: '0.0x'}\n",
    )
    assert [(path, m.split(":")[0]) for _, path, m in problems(text)] == [
        ("hooks[0].fields[0].value", "is not a valid integer"),
        ("hooks[0].fields[1].format", "format applies only to types datetime and decimal"),
        ("hooks[0].fields[2].format", "decimal format '0.0x' is not of the form 0, 0.0, 0.00, ..."),
    ]


def test_json_and_xml_field_names_must_not_clash() -> None:
    text = GOOD.replace("format: form", "format: json").replace(
        "required: true}\n", "required: true}\n      - {name: to.x, value: 1}\n"
    )
    assert problems(text) == [
        (8, "hooks[0].fields", "field names clash: 'to' is both a value and an object")
    ]


@pytest.mark.parametrize("name", ["customer..name", "total.", ".total", "."])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_dotted_field_name_with_an_empty_part_is_refused_where_dots_nest(
    name: str, fmt: str
) -> None:
    """A json body wrote `customer..name` as {"customer": {"": {"name": ...}}}; xml refused it
    already (no element is named "")."""
    text = GOOD.replace("format: form", f"format: {fmt}").replace("name: to,", f'name: "{name}",')
    [(line, path, message)] = problems(text)
    assert (line, path) == (9, "hooks[0].fields[0].name")
    if fmt == "json":
        assert message == (
            "a dot nests a key in the one before it, so no part of a dotted name may be empty"
        )
    for kept in ("csv", "form"):  # names kept as written
        assert problems(text.replace(f"format: {fmt}", f"format: {kept}")) == []


def test_a_dotted_json_field_name_whose_parts_are_named_nests() -> None:
    text = GOOD.replace("format: form", "format: json").replace("name: to,", "name: a.b.c,")
    assert problems(text) == []
    body = render_body(load_hooks_text(text, "hooks.yaml")[0], EVENT).content
    assert json.loads(body) == {"a": {"b": {"c": "1"}}}


def test_xml_field_names_must_be_element_names() -> None:
    text = GOOD.replace("format: form", "format: xml").replace("name: to,", "name: 1to,")
    assert problems(text) == [(9, "hooks[0].fields[0].name", "'1to' cannot be an XML element name")]


EVENT = Event.from_dict(
    {
        "id": "e1",
        "type": "order.created",
        "source": "/s",
        "specversion": "1.0",
        "data": {"phone": "1"},
    }
)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("@xmlns", "'@xmlns' would declare a namespace: set xml.namespace on the hook"),
        ("order.@xmlns", "'@xmlns' would declare a namespace: set xml.namespace on the hook"),
        ("order.@1d", "'1d' cannot be an XML attribute name"),
        ("x:order.id", "'x:order' cannot be an XML element name"),
        ("#text", "'#text' cannot be an XML element name"),
    ],
)
def test_an_xml_field_name_is_refused_at_load_as_rendering_would_refuse_it(
    name: str, message: str
) -> None:
    text = GOOD.replace("format: form", "format: xml").replace("name: to,", f'name: "{name}",')
    assert problems(text) == [(9, "hooks[0].fields[0].name", message)]
    hook = load_hooks_text(GOOD.replace("format: form", "format: xml"), "hooks.yaml")[0]
    one = replace(hook, fields=(replace(hook.fields[0], name=name),))
    if name != "#text":  # a key the encoder reads as the element's text, not as a name
        with pytest.raises(RenderError, match=re.escape(message)):
            render_body(one, EVENT)


@pytest.mark.parametrize("name", ["@id", "order.@id", "order.lines.qty", "Ref"])
def test_an_xml_field_name_that_loads_renders(name: str) -> None:
    text = GOOD.replace("format: form", "format: xml").replace("name: to,", f'name: "{name}",')
    assert problems(text) == []
    render_body(load_hooks_text(text, "hooks.yaml")[0], EVENT)


@pytest.mark.parametrize("secret", ["12345", "not a number"])
def test_a_typed_constant_from_a_secret_reference_is_checked_where_it_renders_not_at_load(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    # at load only the reference's text is known (`hooks validate` may not see the secret at
    # all); the value is converted, and a wrong one refused unshown, when the hook renders
    monkeypatch.setenv("DUGAA_TEST_ACCOUNT", secret)
    field = '      - {name: account, value: "${env:DUGAA_TEST_ACCOUNT}", type: integer}\n'
    text = GOOD.replace("required: true}\n", "required: true}\n" + field)
    assert problems(text) == []
    assert load_hooks_text(text, "h.yaml")[0].fields[1].type == "integer"
    plain = text.replace('"${env:DUGAA_TEST_ACCOUNT}"', "abc")  # a literal is checked at load
    assert problems(plain) == [
        (10, "hooks[0].fields[1].value", "is not a valid integer: 'abc' is not a number")
    ]


@pytest.mark.parametrize("username", ["acme:eu", '"${env:DUGAA_TEST_USER}"'])
def test_a_basic_username_with_a_colon_is_refused_at_load_showing_neither_it_nor_the_password(
    monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("DUGAA_TEST_USER", "acme:eu")
    text = GOOD.replace("username: u,", f"username: {username},")
    found = problems(text)
    assert found == [
        (
            6,
            "hooks[0].auth.username",
            "hook sms: a Basic username cannot contain ':' (RFC 7617): the receiver reads the"
            " username up to the first ':' and the rest as the password",
        )
    ]
    assert SECRET_VALUE not in repr(found)
    assert "acme" not in repr(found)
    with pytest.raises(ConfigError, match="cannot contain ':'"):
        load_hooks_text(text, "h.yaml")


def test_headers_may_hold_secret_references_but_not_line_breaks_or_other_than_ascii() -> None:
    text = GOOD + '    headers: {X-Key: "${env:DUGAA_NOT_SET_K}", X-Bad: "a\\nb", X-Name: "Zoë"}\n'
    assert [m for _, _, m in problems(text)] == [
        "a header value cannot hold a line break or NUL",
        "a header value must be ASCII text (put other text in the URL or body)",
        "hook sms: cannot resolve secret: environment variable DUGAA_NOT_SET_K is not set",
    ]
    good = GOOD + '    headers: {X-Key: "${env:DUGAA_TEST_PASSWORD}"}\n'
    assert problems(good) == []


def test_private_loopback_and_plain_http_urls_only_warn() -> None:
    text = GOOD.replace("https://sms.example.com", "http://127.0.0.1")
    assert problems(text) == []
    assert [m.split(":")[0] for _, _, m in problems(text, warnings=True)] == [
        "plain http",
        "127.0.0.1 is loopback",
    ]
    assert len(problems(text + "    allow_loopback: true\n", warnings=True)) == 1
    assert len(problems(text + "    allow_private_networks: true\n", warnings=True)) == 2
    private = GOOD.replace("https://sms.example.com", "https://10.1.2.3")
    [(_, _, message)] = problems(private, warnings=True)
    assert message.startswith("10.1.2.3 is a private address")
    assert problems(private + "    allow_private_networks: true\n", warnings=True) == []


def test_hook_from_definition_builds_or_lists_every_problem() -> None:
    raw: dict[str, Any] = {"id": "a", "events": ["x"], "url": "https://a.example.com"}
    assert hook_from_definition(raw, "hooks-topic@3").id == "a"
    bad = {**raw, "format": "yaml", "fields": [{"name": "n"}]}
    with pytest.raises(ConfigError) as caught:
        hook_from_definition(bad, "hooks-topic@3")
    assert str(caught.value).splitlines() == [
        'hooks-topic@3: format: "yaml" is not allowed; use one of: json, csv, xml, form',
        "hooks-topic@3: fields[0]: give exactly one of from, value or template (found none)",
    ]
    assert definition_problems(raw, "x") == []


def test_packaged_schema_is_the_published_one() -> None:
    packaged = files("dispatcher").joinpath("schemas/hooks.schema.json").read_bytes()
    assert packaged == (ROOT / "schemas" / "hooks.schema.json").read_bytes()
    assert json.loads(packaged)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_validate_command_exit_codes_and_output(tmp_path: Path) -> None:
    code, output = validation_report(BROKEN)
    assert code == 1
    assert output.splitlines()[-1] == f"{BROKEN}: {len(BROKEN_EXPECTED)} problems"
    good = tmp_path / "hooks.yaml"
    good.write_text(GOOD.replace("https://sms", "http://sms"))
    code, output = validation_report(good)
    assert code == 0
    assert output.splitlines() == [
        f"{good}:4: hooks[0].url: warning: plain http: the body travels unencrypted (use https)",
        f"{good}: 1 hook valid",
    ]
    assert validation_report(tmp_path / "nope.yaml")[0] == 1


def test_list_and_show_mask_secrets() -> None:
    text = GOOD + "    headers: {X-Api-Token: literal-token, X-Tenant: acme}\n"
    [hook] = load_hooks_text(text, "h.yaml")
    table = hook_table([hook]).splitlines()
    assert table[0].split() == [
        "ID",
        "TENANT",
        "ENABLED",
        "EVENTS",
        "METHOD",
        "FORMAT",
        "FIELDS",
        "URL",
    ]
    assert table[1].split() == ["sms", "-", "yes", "order.*", "POST", "form", "1", hook.url]
    shown = hook_yaml(hook)
    assert SECRET_VALUE not in shown
    assert "literal-token" not in shown
    assert "password: '***'" in shown
    assert "X-Tenant: acme" in shown
    assert "- {name: to, from: data.phone, required: true}" in shown
    assert mask_url("https://h.example.com/p?api_key=abc&x=1") == (
        "https://h.example.com/p?api_key=***&x=1"
    )


def test_encryption_key_sets_need_one_form_and_an_active_key(tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    text = GOOD + (
        "    encryption:\n"
        "      algorithm: C20P\n"
        "      keys:\n"
        f"        - {{id: old, key: '${{file:{missing}}}', state: decrypt-only}}\n"
    )
    assert problems(text) == [
        (14, "hooks[0].encryption.keys", "no key is active"),
        (
            15,
            "hooks[0].encryption.keys[0].key",
            f"hook sms: cannot resolve secret: cannot read secret file {missing}: "
            "No such file or directory",
        ),
    ]
    neither = GOOD + "    encryption: {algorithm: C20P}\n"
    assert problems(neither) == [
        (
            12,
            "hooks[0].encryption",
            "give either key (with an optional key_id) or keys, not both or neither",
        )
    ]


def key_set(*lines: str, algorithm: str = "C20P") -> str:
    """GOOD with an encryption of `algorithm` whose lines (below `algorithm:`) are `lines`."""
    head = f"    encryption:\n      algorithm: {algorithm}\n"
    return GOOD + head + "".join(f"      {line}\n" for line in lines)


KEY = "'${env:DUGAA_TEST_KEY}'"


@pytest.fixture
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUGAA_TEST_KEY", "A" * 43)  # 32 bytes, base64url


@pytest.mark.usefixtures("_key")
def test_a_key_set_with_two_active_keys_is_refused_naming_them() -> None:
    """The first active key would encrypt, silently: a rotation has one, the others are
    decrypt-only (a key without `state` is active)."""
    text = key_set("keys:", f"  - {{id: new, key: {KEY}}}", f"  - {{id: old, key: {KEY}}}")
    assert problems(text) == [
        (
            14,
            "hooks[0].encryption.keys",
            "2 keys are active (keys[0], keys[1]); exactly one encrypts: keep one active and"
            " make the others decrypt-only (a key without state is active)",
        )
    ]
    rotating = text.replace("id: old,", "id: old, state: decrypt-only,")
    assert problems(rotating) == []
    assert sent_kid(rotating) == "new"


@pytest.mark.usefixtures("_key")
def test_a_key_id_given_twice_in_a_key_set_is_refused_at_the_second() -> None:
    """A receiver picks its key by the `kid` a message carries: two keys of one id are one."""
    text = key_set(
        "keys:",
        f"  - {{id: k1, key: {KEY}}}",
        f"  - {{id: k2, key: {KEY}, state: decrypt-only}}",
        f"  - {{id: k1, key: {KEY}, state: decrypt-only}}",
    )
    assert problems(text) == [
        (
            17,
            "hooks[0].encryption.keys[2].id",
            "duplicate key id 'k1' (first at keys[0]): a receiver picks the key by its id",
        )
    ]
    unnamed = key_set("keys:", f"  - {{key: {KEY}}}", f"  - {{key: {KEY}, state: decrypt-only}}")
    assert problems(unnamed) == []  # without ids, a receiver tries each key in turn


@pytest.mark.usefixtures("_key")
def test_a_key_id_beside_a_key_set_is_refused_as_it_would_be_ignored() -> None:
    text = key_set("key_id: k-2026-12", "keys:", f"  - {{id: k-2026-11, key: {KEY}}}")
    assert problems(text) == [
        (
            14,
            "hooks[0].encryption.key_id",
            "would be ignored beside keys, as it goes with key: give each key its own id",
        )
    ]


@pytest.mark.usefixtures("_key")
def test_a_key_without_a_key_id_loads_and_sends_no_kid() -> None:
    """`key_id` is optional: without it the JWE header has no `kid`, the C20P envelope a null
    one (README, "Receiving encrypted payloads")."""
    assert sent_kid(key_set(f"key: {KEY}")) is None
    assert sent_kid(key_set(f"key: {KEY}", "key_id: k-2026-11")) == "k-2026-11"
    jwe = key_set(f"key: {KEY}", algorithm="A256GCM")
    assert sent_kid(jwe) == "(none)"
    assert sent_kid(jwe + "      key_id: k-2026-11\n") == "k-2026-11"


def sent_kid(text: str) -> str | None:
    """The key id the body of the file's hook carries: the C20P envelope's `kid`, or a JWE
    header's (`(none)` when it has none)."""
    [hook] = load_hooks_text(text, "h.yaml")
    event = Event(id="e", type="order.paid", source="s", data={"phone": "1"})
    content = build_body(hook, event).content
    if content.startswith(b"{"):
        kid: str | None = json.loads(content)["kid"]
        return kid
    header = json.loads(b64u_decode(content.split(b".")[0]))
    return str(header.get("kid", "(none)"))


def test_key_checks_are_skipped_without_the_encryption_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = GOOD + "    encryption: {algorithm: A256GCM, key: c2hvcnQ}\n"
    assert [m.split(" needs")[0] for _, _, m in problems(text)] == ["A256GCM"]
    monkeypatch.setitem(sys.modules, "dispatcher.security.encryption", None)
    assert problems(text) == []


OAUTH2_OVER_HTTP = """\
hooks:
  - id: crm
    events: [x]
    url: https://crm.example.com/api
    auth:
      type: oauth2_client_credentials
      token_url: http://auth.example.com/token
      client_id: c
      client_secret: "${env:DUGAA_TEST_PASSWORD}"
"""


def test_an_http_token_url_is_refused_without_the_insecure_opt_in_and_warned_with_it() -> None:
    assert problems(OAUTH2_OVER_HTTP) == [
        (
            7,
            "hooks[0].auth.token_url",
            "plain http would send the client secret unencrypted: use https,"
            " or set insecure_token_url: true",
        )
    ]
    opted_in = OAUTH2_OVER_HTTP + "      insecure_token_url: true\n"
    assert problems(opted_in) == []
    [warning] = validate_hooks_text(opted_in, "h.yaml", warnings=True)
    assert warning.warning
    assert problems(opted_in, warnings=True) == [
        (
            7,
            "hooks[0].auth.token_url",
            "plain http token_url: the client secret and tokens travel unencrypted",
        )
    ]


def test_tls_verify_false_with_oauth2_warns_that_the_token_endpoint_is_still_verified() -> None:
    oauth2 = OAUTH2_OVER_HTTP.replace("http://auth", "https://auth")
    unverified = oauth2 + "    tls: {verify: false}\n"
    assert problems(unverified) == []
    assert problems(unverified, warnings=True) == [
        (
            10,
            "hooks[0].tls.verify",
            "verification is off for the API only: the token endpoint's certificate is still"
            " verified (a private CA that signs it goes in tls.ca)",
        )
    ]
    assert problems(oauth2 + "    tls: {verify: true}\n", warnings=True) == []
    assert problems(GOOD + "    tls: {verify: false}\n", warnings=True) == []  # no OAuth2


def test_a_hook_cannot_set_a_header_the_dispatcher_sets_on_every_request() -> None:
    text = GOOD + "    headers: {Webhook-ID: mine, User-Agent: me, X-Tenant: acme}\n"
    messages = [m for _, _, m in problems(text)]
    assert len(messages) == 2
    assert messages[0].startswith("'Webhook-ID' is set by the dispatcher on every request")
    assert messages[1].startswith("'User-Agent' is set by the dispatcher on every request")
    assert problems(GOOD + "    headers: {X-Tenant: acme}\n") == []


def test_a_hooks_content_type_stands_unless_the_body_is_encrypted() -> None:
    """A SOAP 1.1 endpoint takes `text/xml` only; an encrypted body's type is its algorithm's."""
    soap = "    headers: {Content-Type: text/xml; charset=utf-8, SOAPAction: urn:Send}\n"
    assert problems(GOOD + soap) == []
    encrypted = GOOD + soap + f"    encryption: {{algorithm: A256GCM, key: {'A' * 43}}}\n"
    assert [m.split(":")[0] for _, _, m in problems(encrypted)] == [
        "an encrypted body's Content-Type is its algorithm's, which the receiver reads to decrypt it"
    ]


def hook_with(*lines: str) -> str:
    """A one-hook file (id crm) with `lines` added to the hook."""
    head = "hooks:\n  - id: crm\n    events: [x]\n"
    if not any(line.startswith("url:") for line in lines):
        head += "    url: https://crm.example.com/in\n"
    return head + "".join(f"    {line}\n" for line in lines)


TOKEN = '"${env:DUGAA_TEST_PASSWORD}"'
AUTHS = {
    "bearer": f"{{type: bearer, token: {TOKEN}}}",
    "basic": f"{{type: basic, username: u, password: {TOKEN}}}",
    "oauth2_client_credentials": (
        "{type: oauth2_client_credentials, token_url: https://a.example.com/token,"
        f" client_id: c, client_secret: {TOKEN}}}"
    ),
    "api_key": f"{{type: api_key, name: X-Api-Key, value: {TOKEN}}}",
}


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("bearer", "Authorization"),
        ("bearer", "AUTHORIZATION"),
        ("basic", "authorization"),
        ("oauth2_client_credentials", "Authorization"),
        ("api_key", "x-api-key"),
    ],
)
def test_a_header_the_auth_sends_its_credential_in_is_refused_as_the_auth_would_replace_it(
    kind: str, header: str
) -> None:
    text = hook_with(f"auth: {AUTHS[kind]}", f"headers: {{{header}: static, X-Other: kept}}")
    assert problems(text) == [
        (
            6,
            f"hooks[0].headers.{header}",
            f"{header!r} is the header auth ({kind}) sends its credential in, which would"
            " replace this value on every request: drop the header or the auth",
        )
    ]
    assert SECRET_VALUE not in str(problems(text))


def test_a_header_no_credential_is_sent_in_goes_out_beside_the_auth() -> None:
    """hmac signs in the dispatcher's own headers, and an API key in the query is no header:
    a hook's `Authorization` or `X-Api-Key` is then sent as written."""
    signed = hook_with(
        "auth: {type: hmac, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}",
        "headers: {Authorization: Token static}",
    )
    in_query = hook_with(
        f"auth: {{type: api_key, name: X-Api-Key, in: query, value: {TOKEN}}}",
        "headers: {X-Api-Key: static, Authorization: Token static}",
    )
    for text in (signed, in_query):
        assert problems(text) == []
        request = sent_request(text)
        assert request.header("authorization") == "Token static"
    assert sent_request(in_query).header("x-api-key") == "static"
    assert sent_request(signed).header("webhook-signature") is not None


def test_an_api_key_cannot_go_in_a_header_the_dispatcher_sets() -> None:
    """It would replace the dispatcher's own: a body sent as the key's media type."""
    text = hook_with(f"auth: {{type: api_key, name: Content-Type, value: {TOKEN}}}")
    assert problems(text) == [
        (
            5,
            "hooks[0].auth.name",
            "'Content-Type' is set by the dispatcher on every request: the API key would"
            " replace it (send the key in a header of its own)",
        )
    ]


def test_an_api_key_in_the_query_cannot_take_the_name_of_a_parameter_of_the_url() -> None:
    auth = f"auth: {{type: api_key, name: key, in: query, value: {TOKEN}}}"
    text = hook_with("url: https://crm.example.com/in?key=static&x=1", auth)
    assert problems(text) == [
        (
            4,
            "hooks[0].url",
            "its query has 'key', the parameter auth (api_key, in: query) sends the key in:"
            " the key would replace its value on every request (drop it from the URL)",
        )
    ]
    other = hook_with("url: https://crm.example.com/in?keys=static&x=1", auth)
    assert problems(other) == []
    assert sent_request(other).url.endswith("?keys=static&x=1&key=" + SECRET_VALUE)


def sent_request(text: str) -> Request:
    """The request the file's one hook sends for an event, credentials added."""
    [hook] = load_hooks_text(text, "h.yaml")
    request = build_request(hook, Event(id="e", type="x", source="s", data={}), "msg_1")
    auth = build_auth(hook.auth)
    return auth.apply(request) if isinstance(auth, Credentials) else request


def test_an_encrypted_client_key_loads_with_its_password_from_a_secret_reference(
    tmp_path: Path,
) -> None:
    pki = issue_pki(tmp_path, "client ca", password=SECRET_VALUE)  # its key encrypted
    text = hook_with(f"auth: {{type: mtls, cert: {pki.cert}, key: {pki.key}, password: {TOKEN}}}")

    assert problems(text) == []
    [hook] = load_hooks_text(text, "h.yaml")
    assert hook.auth.get("password") == Secret(SECRET_VALUE)
    assert SECRET_VALUE not in hook_yaml(hook)
