"""The SSL contexts of a hook: to its API, and to its OAuth2 token endpoint."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest
from tls_support import issue_pki

from dispatcher.errors import ConfigError
from dispatcher.model.hook import Hook
from dispatcher.security.tls import ssl_context_for, token_context_for

OAUTH2 = {
    "type": "oauth2_client_credentials",
    "token_url": "https://idp.example.com/oauth/token",
    "client_id": "c",
    "client_secret": "s",
}


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA bundle of one self-signed CA certificate."""
    return issue_pki(tmp_path_factory.mktemp("ca"), "vendor private ca").ca


def _hook(tls: dict[str, Any]) -> Hook:
    raw = {"id": "h", "events": ["x"], "url": "https://api.example.com/in", "auth": OAUTH2}
    return Hook.from_dict({**raw, "tls": tls})


def _public_roots() -> int:
    return len(ssl.create_default_context(cafile=certifi.where()).get_ca_certs())


def test_the_token_endpoint_is_verified_whatever_tls_verify_says(private_ca: Path) -> None:
    hook = _hook({"verify": False, "ca": str(private_ca)})
    api, tokens = ssl_context_for(hook), token_context_for(hook)
    assert (api.verify_mode, api.check_hostname) == (ssl.CERT_NONE, False)
    assert (tokens.verify_mode, tokens.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert tokens.minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_token_endpoint_trusts_the_public_roots_and_the_hooks_ca(private_ca: Path) -> None:
    hook = _hook({"ca": str(private_ca)})
    assert len(ssl_context_for(hook).get_ca_certs()) == 1  # the API: the private CA alone
    assert len(token_context_for(hook).get_ca_certs()) == _public_roots() + 1
    assert len(token_context_for(_hook({})).get_ca_certs()) == _public_roots()


def test_a_missing_ca_bundle_is_a_config_error_for_the_token_endpoint_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hook h: tls\.ca: cannot load CA bundle"):
        token_context_for(_hook({"ca": str(tmp_path / "nope.pem")}))
