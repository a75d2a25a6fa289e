"""The one masking rule: names that look like credentials, URL passwords, api keys, Secrets."""

from __future__ import annotations

import pytest

from dispatcher.config.secrets import Secret
from dispatcher.hooks.masking import (
    keep_masked,
    looks_sensitive,
    mask_definition,
    mask_header,
    mask_url,
    mask_value,
)


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


def test_secrets_are_masked_in_lists_too() -> None:
    assert mask_value(Secret("x")) == "***"
    assert mask_value(["a", Secret("x")]) == ["a", "***"]
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
