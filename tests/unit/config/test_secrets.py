"""Secret references, and the scope that bounds those in hooks from the hook store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dispatcher.config.admin import TENANT
from dispatcher.config.secrets import Secret, SecretScope, resolve, tenant_key
from dispatcher.config.settings import load_settings
from dispatcher.errors import ConfigError, SecretError


@pytest.fixture
def scope(tmp_path: Path) -> SecretScope:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "sms_key").write_text("sms-value\n")
    (tmp_path / "outside").write_text("outside-value\n")
    (secrets / "escape").symlink_to(tmp_path / "outside")
    return SecretScope(env_prefix="DISPATCHER_SECRET_", dir=str(secrets))


def test_a_file_inside_the_directory_resolves_by_absolute_or_relative_name(
    scope: SecretScope,
) -> None:
    path = os.path.join(scope.dir, "sms_key")
    assert resolve(f"${{file:{path}}}", scope=scope) == Secret("sms-value")
    assert resolve("${file:sms_key}", scope=scope) == Secret("sms-value")


@pytest.mark.parametrize("name", ["../outside", "escape", "{dir}/../outside", "/etc/passwd"])
def test_a_file_outside_the_directory_is_refused_however_it_is_reached(
    scope: SecretScope, name: str
) -> None:
    name = name.format(dir=scope.dir)
    with pytest.raises(SecretError, match=r"is not allowed: .* only files inside") as caught:
        resolve(f"${{file:{name}}}", where="hooks[0].auth.token", scope=scope)
    assert "outside-value" not in str(caught.value)
    assert "root:" not in str(caught.value)


def test_a_refusal_says_the_same_whether_or_not_the_file_exists(scope: SecretScope) -> None:
    messages = []
    for name in ("/etc/passwd", "/etc/no-such-file-here"):
        with pytest.raises(SecretError) as caught:
            resolve(f"${{file:{name}}}", scope=scope)
        messages.append(str(caught.value).replace(name, "NAME"))
    assert messages[0] == messages[1]


def test_a_missing_file_inside_the_directory_is_named_as_missing(scope: SecretScope) -> None:
    with pytest.raises(SecretError, match="cannot read secret file"):
        resolve("${file:nope}", scope=scope)


def test_only_variables_with_the_prefix_may_be_named(
    scope: SecretScope, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET_SMS", "v1")
    monkeypatch.setenv("DUGAA_ADMIN_TOKEN", "admin-value")
    assert resolve("${env:DISPATCHER_SECRET_SMS}", scope=scope) == Secret("v1")
    messages = []
    for name in ("DUGAA_ADMIN_TOKEN", "NOT_SET_AT_ALL"):
        with pytest.raises(SecretError, match="starting with DISPATCHER_SECRET_") as caught:
            resolve(f"${{env:{name}}}", scope=scope)
        assert "admin-value" not in str(caught.value)
        messages.append(str(caught.value).replace(name, "NAME"))
    assert messages[0] == messages[1]


def test_without_a_scope_any_reference_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUGAA_ADMIN_TOKEN", "admin-value")
    assert resolve("${env:DUGAA_ADMIN_TOKEN}") == Secret("admin-value")


def test_the_scope_is_read_from_the_service_configuration(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("secrets: {env_prefix: ACME_, dir: /var/run/acme}\n")
    assert load_settings(str(path), environ={}).secrets == SecretScope("ACME_", "/var/run/acme")
    assert load_settings(None, environ={}).secrets == SecretScope(
        "DISPATCHER_SECRET_", "/run/secrets"
    )
    path.write_text("secrets: {prefix: X_}\n")
    with pytest.raises(ConfigError, match=r"secrets\.prefix: unknown key"):
        load_settings(str(path), environ={})


def test_a_tenant_prefix_spells_the_tenant_readably() -> None:
    scope = SecretScope()
    assert scope.tenant_prefix("acme") == "DISPATCHER_SECRET_ACME__"
    assert scope.tenant_prefix("acme-eu.2") == "DISPATCHER_SECRET_ACME_EU_2__"
    assert scope.tenant_prefix("Acme--EU-") == "DISPATCHER_SECRET_ACME_EU__"


# few characters, so that names beginning one another and runs of separators are common
TENANTS = st.text("aB1-._", min_size=1, max_size=6).filter(lambda t: bool(TENANT.fullmatch(t)))


@given(TENANTS, TENANTS)
@example("acme", "acme-eu")
@example("acme", "acme_-eu")
@example("acme", "acme-")
def test_no_tenant_prefix_begins_another_unless_their_keys_are_equal(
    first: str, second: str
) -> None:
    """The configuration refuses tokens of two tenants with one key; any other two tenants
    name disjoint sets of variables."""
    scope = SecretScope()
    if tenant_key(first) != tenant_key(second):
        assert not scope.tenant_prefix(second).startswith(scope.tenant_prefix(first))
