"""The one masking rule: names that look like credentials, URL passwords, api keys, Secrets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.cli.output import hook_table, hook_yaml, request_text
from dispatcher.config.secrets import Secret
from dispatcher.hooks.describe import describe
from dispatcher.hooks.masking import (
    URL_IN_TEXT,
    looks_sensitive,
    mask_definition,
    mask_header,
    mask_text,
    mask_url,
    mask_urls,
    mask_value,
)
from dispatcher.hooks.unmasking import keep_masked
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.ops.trial import prepare
from dispatcher.pipeline.request import build_request


@pytest.mark.parametrize(
    "name", ["Authorization", "x-api-key", "X-Auth-Token", "cookie", "x-session", "Signature"]
)
def test_credential_like_names_are_sensitive(name: str) -> None:
    assert looks_sensitive(name)


@pytest.mark.parametrize("name", ["content-type", "x-tenant", "webhook-id", "accept"])
def test_other_names_are_not(name: str) -> None:
    assert not looks_sensitive(name)


def test_an_authorization_keeps_its_scheme_and_loses_its_credential() -> None:
    assert mask_header("Authorization", "Bearer abc.def") == "Bearer ***"
    assert mask_header("authorization", "opaque") == "***"
    assert mask_header("x-vendor", "k-123", secret_names=["X-Vendor"]) == "***"
    assert mask_header("x-tenant", "acme") == "acme"


def test_a_url_loses_its_password_and_credential_query_values() -> None:
    url = "https://user:pw@crm.example/in?token=t&tenant=acme&k=v"
    assert mask_url(url, ["k"]) == "https://user:***@crm.example/in?token=***&tenant=acme&k=***"


def test_a_url_keeps_every_query_piece_it_does_not_mask_as_written() -> None:
    url = "https://crm.example/in?since=10:00:00+01:00&flag&q=%41&a%20b=c+d&token=t+u"
    shown = "https://crm.example/in?since=10:00:00+01:00&flag&q=%41&a%20b=c+d&token=***"
    assert mask_url(url) == shown
    assert mask_url("https://crm.example/in?%74oken=t&Api_Key") == (
        "https://crm.example/in?%74oken=***&Api_Key=***"
    )


def test_secrets_are_masked_in_lists_too() -> None:
    assert mask_value(Secret("x")) == "***"
    assert mask_value(["a", Secret("x")]) == ["a", "***2"]  # the stored entry it stands for
    assert mask_value(3) == 3


STORED = {
    "id": "sms",
    "events": ["order.*"],
    "url": "https://user:pa55@sms.example/send?api_key=${env:K}&to=1",
    "headers": {"X-Session": "${env:SESSION}", "X-Tenant": "acme"},
    "auth": {"type": "bearer", "token": "${env:SMS_TOKEN}"},
    "encryption": {"algorithm": "A256GCM", "key": "${env:SMS_KEY}", "key_id": "k1"},
}


def test_a_definition_is_shown_with_every_secret_masked() -> None:
    shown = mask_definition(STORED)
    assert shown["auth"] == {"type": "bearer", "token": "***"}
    assert shown["encryption"]["key"] == "***"
    assert shown["headers"] == {"X-Session": "***", "X-Tenant": "acme"}
    assert "pa55" not in shown["url"]
    assert "api_key=***" in shown["url"]
    assert STORED["auth"]["token"] == "${env:SMS_TOKEN}"  # the stored one is untouched


def test_masked_values_sent_back_unchanged_keep_the_stored_ones() -> None:
    edited = {**mask_definition(STORED), "events": ["order.shipped"]}
    assert keep_masked(edited, STORED) == {**STORED, "events": ["order.shipped"]}


def test_a_value_changed_by_the_editor_wins_over_the_stored_one() -> None:
    edited = mask_definition(STORED)
    edited["auth"] = {"type": "bearer", "token": "${env:NEW_TOKEN}"}
    assert keep_masked(edited, STORED)["auth"]["token"] == "${env:NEW_TOKEN}"


def test_a_mask_with_nothing_stored_stays_a_mask_for_the_checks_to_refuse() -> None:
    assert keep_masked({"auth": {"token": "***"}}, None) == {"auth": {"token": "***"}}
    assert keep_masked({"auth": {"token": "***"}}, {}) == {"auth": {"token": "***"}}


def test_a_text_shows_its_urls_masked_and_no_secret_of_the_hook_in_any_encoding() -> None:
    hook = Hook.from_dict(
        {
            "id": "h",
            "events": ["x"],
            "url": "https://api.example/in",
            "auth": {"type": "api_key", "name": "code", "value": "k/ey+&=1", "in": "query"},
        }
    )
    text = (
        "Can not write request body for https://u:pw@api.example/in?code=k%2Fey%2B%26%3D1&n=2 ;"
        " raw k/ey+&=1, base64 ay9leSsmPTE, quoted k%2Fey%2B%26%3D1"
    )
    assert mask_text(text, hook) == (
        "Can not write request body for https://u:***@api.example/in?code=***&n=2 ;"
        " raw ***, base64 ***, quoted ***"
    )


def test_a_malformed_url_in_a_text_is_not_shown() -> None:
    hook = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://api.example/in"})
    assert mask_text("failed: http://[::1/x?token=t", hook) == "failed: <url>"


_TEXT_PIECES = st.one_of(
    st.sampled_from(["://", ":/", "//", "https", "h2+x.y-z", "1http", "+", ".", "-", "_"]),
    st.sampled_from(["u:pw@", "api.example", "/in", "?token=t&n=2", "?x=1", "[::1", "#f"]),
    st.sampled_from([" ", "\t", "\n", "'", '"', "<", ">", "\u00a0", "\u2003", "\x1c"]),
    st.text(alphabet="aZ9:/.?=&@é", max_size=8),
)


@settings(max_examples=500)
@given(pieces=st.lists(_TEXT_PIECES, max_size=30))
def test_urls_in_a_text_are_found_as_the_pattern_finds_them(pieces: list[str]) -> None:
    text = "".join(pieces)
    by_the_pattern = URL_IN_TEXT.sub(lambda found: mask_url(found.group(0), ["n"]), text)

    assert mask_urls(text, ["n"]) == by_the_pattern


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "see https://u:pw@a.example/x and ftp://b.example/y?token=t",
            "see https://u:***@a.example/x and ftp://b.example/y?token=***",
        ),
        ("9+https://a.example/?token=t", "9+https://a.example/?token=***"),  # from its letter
        ("x://", "x://"),  # nothing after it: no URL
        ("://a.example/?token=t", "://a.example/?token=t"),  # no scheme: no URL
        (  # the first URL runs on through the second
            "a-https://x/?token=t://b/?token=u 'c://d?token=v'",
            "a-https://x/?token=*** 'c://d?token=***'",
        ),
    ],
)
def test_urls_in_a_text_are_masked_one_by_one(text: str, shown: str) -> None:
    assert mask_urls(text) == shown


def _referring_hook(monkeypatch: pytest.MonkeyPatch) -> Hook:
    monkeypatch.setenv("DUGAA_TEST_TENANT", "tenant/7f3a9c")
    monkeypatch.setenv("DUGAA_TEST_QKEY", "qk-81e0d2&x=1")
    monkeypatch.setenv("DUGAA_TEST_HKEY", "hk-55aa01")
    monkeypatch.setenv("DUGAA_TEST_PIN", "pin-90f1c3")
    return Hook.from_dict(
        {
            "id": "h",
            "events": ["x"],
            "url": "https://api.example/${env:DUGAA_TEST_TENANT}/in?k=${env:DUGAA_TEST_QKEY}&n=1",
            "headers": {"X-Vendor": "${env:DUGAA_TEST_HKEY}", "X-Tenant": "acme"},
            "fields": [{"name": "pin", "value": "${env:DUGAA_TEST_PIN}"}],
        }
    )


REFERRED = ("tenant/7f3a9c", "7f3a9c", "qk-81e0d2", "hk-55aa01", "pin-90f1c3")


def test_references_in_url_headers_and_fields_are_sent_as_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = _referring_hook(monkeypatch)
    request = build_request(hook, Event(id="e", type="x", source="s"), "msg_1")
    assert str(request.url) == "https://api.example/tenant%2F7f3a9c/in?k=qk-81e0d2%26x%3D1&n=1"
    assert request.header("x-vendor") == "hk-55aa01"
    assert json.loads(request.content) == {"pin": "pin-90f1c3"}
    assert "7f3a9c" not in repr(hook)


def test_references_in_url_headers_and_fields_are_shown_masked_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = _referring_hook(monkeypatch)
    trial = prepare(hook, Event(id="e", type="x", source="s"))
    assert trial.shown is not None
    shown = {
        "hooks show": hook_yaml(hook),
        "hooks list": hook_table([hook]),
        "describe": json.dumps(describe(hook), default=str),
        "hooks test": request_text(trial.shown),
    }
    for where, text in shown.items():
        assert not [value for value in REFERRED if value in text], where
    assert describe(hook)["url"] == "https://api.example/***/in?k=***&n=1"
    assert describe(hook)["headers"] == {"X-Vendor": "***", "X-Tenant": "acme"}
    assert trial.shown.url == "https://api.example/***/in?k=***&n=1"
    assert json.loads(trial.shown.body) == {"pin": "***"}
