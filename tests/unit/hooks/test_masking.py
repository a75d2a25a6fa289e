"""The one masking rule: names that look like credentials, URL passwords, api keys, Secrets."""

from __future__ import annotations

import pytest

from dispatcher.config.secrets import Secret
from dispatcher.hooks.masking import looks_sensitive, mask_header, mask_text, mask_url, mask_value
from dispatcher.model.hook import Hook


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
