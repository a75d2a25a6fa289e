"""The one masking rule: names that look like credentials, URL passwords, api keys, Secrets."""

from __future__ import annotations

import pytest

from dispatcher.config.secrets import Secret
from dispatcher.hooks.masking import looks_sensitive, mask_header, mask_url, mask_value


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
