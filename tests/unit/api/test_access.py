"""Who may do what: every API route refuses a missing token, writes and the test route refuse a
viewer; tokens that are empty, missing or short stop the service at start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, VIEWER
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dispatcher.api.app import API_ROUTERS
from dispatcher.api.auth import Grant, Tokens
from dispatcher.api.sessions import LoginLimiter, Sessions
from dispatcher.config.admin import Admin, AdminToken
from dispatcher.config.secrets import Secret
from dispatcher.config.settings import load_settings
from dispatcher.errors import ConfigError

ROUTES = sorted(
    (method, route.path)
    for router in API_ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods
)
WRITES = [(m, p) for m, p in ROUTES if m != "GET"]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", path)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=lambda v: str(v))
def test_every_route_refuses_a_request_without_a_token(
    client: TestClient, method: str, path: str
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": ADMIN["Authorization"].replace("Bearer", "Basic")},
    ):
        answer = client.request(method, concrete(path), json={}, headers=headers)
        assert answer.status_code == 401, (method, path, headers)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert list(answer.json()) == ["error"]


@pytest.mark.parametrize(("method", "path"), WRITES, ids=lambda v: str(v))
def test_writes_and_the_test_route_refuse_a_viewer(
    client: TestClient, method: str, path: str
) -> None:
    answer = client.request(method, concrete(path), json={}, headers=VIEWER)
    assert answer.status_code == 403, (method, path)
    assert answer.json() == {"error": "needs the admin role"}


def test_the_test_route_is_a_write() -> None:
    assert ("POST", "/api/hooks/{hook_id}/test") in WRITES


def test_a_viewer_reads_and_an_admin_passes_the_role_check(client: TestClient) -> None:
    assert client.get("/api/hooks", headers=VIEWER).json() == {"hooks": []}
    assert client.get("/api/dead-letters", headers=VIEWER).json() == {"total": 0, "by_hook": {}}
    # past the role check: the hook store is switched off in this app
    assert client.post("/api/hooks", json={"id": "a"}, headers=ADMIN).status_code == 409


def test_errors_are_short_json_never_a_traceback(client: TestClient) -> None:
    answer = client.get("/api/hooks/x/outcomes", params={"limit": "many"}, headers=VIEWER)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid request"
    assert "Traceback" not in answer.text
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_the_health_route_is_open(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}


def test_security_headers_are_on_every_answer(client: TestClient) -> None:
    for answer in (client.get("/healthz"), client.get("/api/hooks")):
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("token", "message"),
    [("", "missing or empty"), ("   ", "missing or empty"), (None, "missing or empty")],
)
def test_a_missing_or_empty_token_is_a_configuration_error(
    tmp_path: Path, token: str | None, message: str
) -> None:
    config = tmp_path / "dispatcher.yaml"
    entry = "{role: admin}" if token is None else f'{{token: "{token}", role: admin}}'
    config.write_text(f"admin:\n  tokens:\n    - {entry}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(str(config), environ={})


def test_a_token_resolving_to_nothing_or_too_short_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMPTY_TOKEN", "")
    with pytest.raises(ConfigError, match="empty"):
        Tokens.from_settings(Admin(tokens=(AdminToken("${env:EMPTY_TOKEN}", "admin"),)))
    with pytest.raises(ConfigError, match="too short"):
        Tokens.from_settings(Admin(tokens=(AdminToken(Secret("short"), "admin"),)))
    with pytest.raises(ConfigError, match="at least one token"):
        Tokens.from_settings(Admin())
    with pytest.raises(ConfigError, match="NOT_SET_TOKEN"):
        Tokens.from_settings(Admin(tokens=(AdminToken("${env:NOT_SET_TOKEN}", "admin"),)))


def test_the_same_token_twice_stops_the_start_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two entries resolving to one token (two names of one Secret key, say) would grant the
    first entry's role and tenant only: a tenant's viewer token silently an admin's."""
    monkeypatch.setenv("TENANT_TOKEN", "acme-viewer-token-0123456789")
    tokens = (
        AdminToken(Secret("acme-viewer-token-0123456789"), "admin"),
        AdminToken(Secret("another-token-abcdefghijkl"), "viewer"),
        AdminToken("${env:TENANT_TOKEN}", "viewer", "acme"),
    )
    with pytest.raises(
        ConfigError, match=r"admin.tokens\[2\].token: the same token as admin.tokens\[0\]"
    ) as refused:
        Tokens.from_settings(Admin(tokens=tokens))
    assert "acme-viewer-token" not in str(refused.value)


def test_roles_and_tenants_are_checked_when_the_configuration_is_read(tmp_path: Path) -> None:
    config = tmp_path / "dispatcher.yaml"
    config.write_text("admin:\n  tokens:\n    - {token: abcdefghijklmnopq, role: root}\n")
    with pytest.raises(ConfigError, match=r"dispatcher.yaml:2: admin.tokens: .*viewer or admin"):
        load_settings(str(config), environ={})
    config.write_text("admin:\n  tokens:\n    - {token: x, role: admin, tenant: ac/me}\n")
    with pytest.raises(ConfigError, match=r"admin.tokens\[0\].tenant: not a valid tenant"):
        load_settings(str(config), environ={})
    config.write_text(
        "admin:\n  tokens:\n    - {token: abcdefghijklmnopq, role: viewer, tenant: acme}\n"
    )
    (token,) = load_settings(str(config), environ={}).admin.tokens
    assert (token.role, token.tenant) == ("viewer", "acme")


def test_trusted_proxies_are_networks_and_none_by_default(tmp_path: Path) -> None:
    assert Admin().trusted_proxies == ()
    config = tmp_path / "dispatcher.yaml"
    config.write_text("admin:\n  trusted_proxies: [10.1.0.0/16, 127.0.0.2]\n")
    proxies = load_settings(str(config), environ={}).admin.trusted_proxies
    assert [str(network) for network in proxies] == ["10.1.0.0/16", "127.0.0.2/32"]
    config.write_text("admin:\n  trusted_proxies: [10.1.0.0/33]\n")
    with pytest.raises(
        ConfigError, match=r"dispatcher.yaml:2: admin.trusted_proxies: .*10.1.0.0/33"
    ):
        load_settings(str(config), environ={})
    # text, as an override gives it, is a comma-separated list
    config.write_text("admin:\n  trusted_proxies: 10.1.0.0/16, 127.0.0.2\n")
    proxies = load_settings(str(config), environ={}).admin.trusted_proxies
    assert [str(network) for network in proxies] == ["10.1.0.0/16", "127.0.0.2/32"]
    config.write_text("admin:\n  trusted_proxies: {a: 1}\n")
    with pytest.raises(ConfigError, match=r"admin.trusted_proxies: must be a list"):
        load_settings(str(config), environ={})


def test_the_default_bind_address_is_loopback() -> None:
    assert Admin().host == "127.0.0.1"
    assert load_settings(None, environ={}).admin.host == "127.0.0.1"


def test_a_token_is_matched_to_its_grant_only_when_exact() -> None:
    tokens = Tokens(
        [
            (b"a" * 20, Grant("admin")),
            (b"v" * 20, Grant("viewer")),
            (b"t" * 20, Grant("admin", "acme")),
        ]
    )
    assert tokens.grant_of("a" * 20) == Grant("admin")
    assert tokens.grant_of("v" * 20) == Grant("viewer")
    assert tokens.grant_of("t" * 20) == Grant("admin", "acme")
    assert tokens.grant_of("a" * 19) is None
    assert tokens.grant_of("a" * 21) is None
    assert tokens.grant_of("") is None


def test_sign_in_attempts_are_limited_per_client_within_a_window() -> None:
    limiter = LoginLimiter(attempts=3, window=60)
    for _ in range(3):
        assert limiter.allowed("1.2.3.4", now=0)
        limiter.failed("1.2.3.4", now=0)
    assert not limiter.allowed("1.2.3.4", now=30)
    assert limiter.allowed("5.6.7.8", now=30)
    assert limiter.allowed("1.2.3.4", now=61)


TOKEN = "session-test-token-0123456789"
TOKENS = Tokens([(TOKEN.encode(), Grant("admin"))])


class FakeRequest:
    def __init__(self, value: str) -> None:
        self.cookies = {"dugaa_session": value}


def test_a_forged_or_expired_session_is_no_session(client: TestClient) -> None:
    sessions = Sessions(ttl=60, key="k" * 32)
    cookie, _ = sessions.cookie(TOKEN, Grant("admin"))
    forged, _ = Sessions(ttl=60, key="x" * 32).cookie(TOKEN, Grant("admin"))
    assert sessions.read(FakeRequest(cookie), TOKENS) is not None  # type: ignore[arg-type]
    assert sessions.read(FakeRequest(forged), TOKENS) is None  # type: ignore[arg-type]
    expired = Sessions(ttl=-1, key="k" * 32)
    assert expired.read(FakeRequest(cookie), TOKENS) is None  # type: ignore[arg-type]


def test_a_session_lasts_only_as_long_as_its_token_grants_the_same() -> None:
    sessions = Sessions(ttl=60, key="k" * 32)
    cookie, _ = sessions.cookie(TOKEN, Grant("admin"))
    request = FakeRequest(cookie)
    assert sessions.read(request, TOKENS) is not None  # type: ignore[arg-type]
    other = b"another-token-0123456789"
    for now in (
        Tokens([(other, Grant("admin"))]),  # the token removed
        Tokens([(TOKEN.encode(), Grant("viewer"))]),  # lowered to viewer
        Tokens([(TOKEN.encode(), Grant("admin", "acme"))]),  # limited to a tenant
    ):
        assert sessions.read(request, now) is None  # type: ignore[arg-type]
    assert TOKEN not in cookie
    old_style = sessions._signer.dumps({"role": "admin", "csrf": "c"})  # no fingerprint
    assert sessions.read(FakeRequest(old_style), TOKENS) is None  # type: ignore[arg-type]


def test_signing_out_denies_the_session_even_with_a_copy_of_its_cookie(
    client: TestClient,
) -> None:
    answer = client.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert answer.status_code == 303
    copy = client.cookies.get("dugaa_session")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert csrf is not None
    out = client.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("dugaa_session", copy)
    assert client.get("/", follow_redirects=False).status_code == 303  # to the sign-in page
    client.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert client.get("/", follow_redirects=False).status_code == 200  # a new session works


def test_a_configured_session_key_lets_a_session_outlive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_KEY", "s" * 40)
    config = tmp_path / "dispatcher.yaml"
    config.write_text("admin:\n  session_key: ${env:SESSION_KEY}\n")
    admin = load_settings(str(config), environ={}).admin
    tokens = Tokens([(TOKEN.encode(), Grant("viewer"))])
    cookie, _ = Sessions.from_settings(admin).cookie(TOKEN, Grant("viewer"))
    restarted = Sessions.from_settings(admin)  # the same key, read anew
    assert restarted.read(FakeRequest(cookie), tokens) is not None  # type: ignore[arg-type]
    keyless = Admin()  # a key of each start's own: the cookie of another start is no session
    assert Sessions.from_settings(keyless).read(FakeRequest(cookie), tokens) is None  # type: ignore[arg-type]
    config.write_text(f"admin:\n  session_key: {'p' * 40}\n")  # a value as written: kept secret
    assert "p" * 40 not in repr(load_settings(str(config), environ={}))

    monkeypatch.setenv("SESSION_KEY", "short")
    with pytest.raises(ConfigError, match=r"admin\.session_key: too short"):
        Sessions.from_settings(admin)
    config.write_text("admin:\n  session_key: ''\n")
    with pytest.raises(ConfigError, match=r"admin\.session_key: must be"):
        load_settings(str(config), environ={})
