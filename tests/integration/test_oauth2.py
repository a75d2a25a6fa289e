"""OAuth2 client credentials against a real token endpoint and API on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import certifi
import httpx
import pytest
from tls_support import Pki, issue_pki

from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings
from dispatcher.errors import AuthError
from dispatcher.http.pool import ClientPool
from dispatcher.http.sender import Attempt
from dispatcher.model.auth import AuthSpec
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request
from dispatcher.security.auth import build_auth
from dispatcher.security.oauth2 import OAuth2ClientCredentials

CLIENT_ID, CLIENT_SECRET = "dugaa", "s3cret/+value"


class Authority:
    """The state behind the token endpoint and the API: tokens issued, tokens honoured."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.forms: list[dict[str, list[str]]] = []
        self.api_calls = 0
        self.refuse_all = False
        self.expires_in = 3600
        self.token_status = 200
        self.token_requests = 0  # counted as they come in, answered or not
        self.token_asked = threading.Event()  # a token request came in
        self.answer_tokens = threading.Event()  # token requests are answered once it is set
        self.answer_tokens.set()

    def issue(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        # RFC 6749 2.3.1: id and secret are form-encoded before the Basic encoding
        expected = base64.b64encode(b"dugaa:s3cret%2F%2Bvalue").decode()
        with self.lock:
            self.forms.append(form)
            if authorization != f"Basic {expected}":
                return 401, {"error": "invalid_client"}
            if self.token_status != 200:
                self.issued.append("(refused)")
                return self.token_status, {"error": "temporarily_unavailable"}
            token = f"tok-{len(self.issued)}"
            self.issued.append(token)
            if not self.refuse_all:
                self.valid.add(token)
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}

    def admit(self, authorization: str) -> int:
        with self.lock:
            self.api_calls += 1
            return 200 if authorization.removeprefix("Bearer ") in self.valid else 401


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: Server

    def handle(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.server.handshake_failed.set()
                return
        super().handle()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        authorization = self.headers.get("authorization", "")
        if self.path == "/token":
            authority = self.server.authority
            with authority.lock:
                authority.token_requests += 1
            authority.token_asked.set()
            authority.answer_tokens.wait()
            status, payload = authority.issue(authorization, parse_qs(body.decode()))
            self._reply(status, json.dumps(payload).encode())
        else:
            self._reply(self.server.authority.admit(authorization), b"{}")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    """The token endpoint (`/token`) and the API (any other path) of `authority`: over plain
    http, or over TLS with the server certificate of `tls`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, tls: ssl.SSLContext | None = None, authority: Authority | None = None):
        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "http" if tls is None else "https"
        self.authority = authority or Authority()
        self.handshake_failed = threading.Event()

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def running(srv: Server) -> Iterator[Server]:
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    with running(Server()) as srv:
        yield srv


def _spec(server: Server, **extra: str) -> AuthSpec:
    return AuthSpec.from_dict(
        {
            "type": "oauth2_client_credentials",
            "token_url": f"{server.base}/token",
            "insecure_token_url": True,  # a loopback server without TLS
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **extra,
        }
    )


def _auth(spec: AuthSpec, *, token_client: httpx.AsyncClient | None = None) -> httpx.Auth:
    auth = build_auth(spec, token_client=token_client)
    assert isinstance(auth, OAuth2ClientCredentials)
    return auth


def test_one_token_serves_many_requests(server: Server) -> None:
    async def main() -> list[int]:
        async with httpx.AsyncClient() as client:
            auth = _auth(_spec(server, scope="sms:send"), token_client=client)
            return [
                (await client.post(f"{server.base}/api", auth=auth, content=b"{}")).status_code
                for _ in range(30)
            ]

    assert asyncio.run(main()) == [200] * 30
    assert server.authority.issued == ["tok-0"]
    assert server.authority.forms == [{"grant_type": ["client_credentials"], "scope": ["sms:send"]}]


def test_a_single_refresh_for_100_concurrent_requests(server: Server) -> None:
    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            auth = _auth(_spec(server), token_client=client)
            posts = [client.post(f"{server.base}/api", auth=auth) for _ in range(100)]
            first = [r.status_code for r in await asyncio.gather(*posts)]
            server.authority.valid.clear()  # every cached token is now refused: 401 for all
            posts = [client.post(f"{server.base}/api", auth=auth) for _ in range(100)]
            return first + [r.status_code for r in await asyncio.gather(*posts)]

    assert asyncio.run(main()) == [200] * 200
    assert server.authority.issued == ["tok-0", "tok-1"]
    # 100 + 100 that met a 401 and were retried once each with the one new token
    assert server.authority.api_calls == 300


def test_token_is_refreshed_on_expiry(server: Server) -> None:
    now = [0.0]
    server.authority.expires_in = 120

    async def main() -> list[int]:
        async with httpx.AsyncClient() as client:
            auth = OAuth2ClientCredentials(
                f"{server.base}/token",
                CLIENT_ID,
                Secret(CLIENT_SECRET),
                token_client=client,
                leeway=30,
                clock=lambda: now[0],
            )
            codes = []
            for step in (0, 80, 9, 2, 50):  # expires (for us) at 90, then at 91 + 90
                now[0] += step
                codes.append((await client.post(f"{server.base}/api", auth=auth)).status_code)
            return codes

    assert asyncio.run(main()) == [200] * 5
    assert server.authority.issued == ["tok-0", "tok-1"]
    assert server.authority.api_calls == 5


def test_401_means_one_refresh_and_one_retry(server: Server) -> None:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            auth = _auth(_spec(server), token_client=client)
            await client.post(f"{server.base}/api", auth=auth)
            server.authority.valid.clear()
            return await client.post(f"{server.base}/api", auth=auth, content=b'{"n":2}')

    response = asyncio.run(main())
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert server.authority.issued == ["tok-0", "tok-1"]
    assert server.authority.api_calls == 3


def test_a_token_refused_after_the_refresh_is_an_auth_error(server: Server) -> None:
    server.authority.refuse_all = True

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.base}/api", auth=_auth(_spec(server)))

    with pytest.raises(AuthError) as caught:
        asyncio.run(main())
    assert (caught.value.kind, caught.value.status) == ("auth", 401)
    assert server.authority.issued == ["tok-0", "tok-1"]
    assert server.authority.api_calls == 2


def test_wrong_client_secret_is_an_auth_error_naming_no_secret(server: Server) -> None:
    spec = AuthSpec.from_dict(
        {
            "type": "oauth2_client_credentials",
            "token_url": f"{server.base}/token",
            "insecure_token_url": True,  # a loopback server without TLS
            "client_id": CLIENT_ID,
            "client_secret": "wrong-secret",
        }
    )

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.base}/api", auth=_auth(spec, token_client=client))

    with pytest.raises(AuthError, match="answered 401") as caught:
        asyncio.run(main())
    assert "wrong-secret" not in str(caught.value)
    assert server.authority.api_calls == 0


def test_token_endpoint_down_is_an_auth_error(server: Server) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    spec = AuthSpec.from_dict(
        {
            "type": "oauth2_client_credentials",
            "token_url": f"http://127.0.0.1:{closed}/token",
            "insecure_token_url": True,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    )

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.base}/api", auth=_auth(spec, token_client=client))

    with pytest.raises(AuthError, match="unreachable") as caught:
        asyncio.run(main())
    assert caught.value.kind == "auth"
    assert server.authority.api_calls == 0


def _hook(
    server: Server,
    *,
    timeout: str = "10s",
    token_server: Server | None = None,
    tls: dict[str, Any] | None = None,
) -> Hook:
    """A hook whose API is `server`'s and token endpoint `token_server`'s (else `server`'s),
    sent through the delivery path."""
    tokens = token_server or server
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{tokens.base}/token",
        "insecure_token_url": tokens.scheme == "http",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    raw = {"id": "api", "events": ["order.*"], "url": f"{server.base}/api", "auth": auth}
    return Hook.from_dict({**raw, "timeout": timeout, "allow_loopback": True, "tls": tls or {}})


async def _deliver(pool: ClientPool, hook: Hook, number: int) -> Attempt:
    request = Request("POST", hook.url, (("webhook-id", f"msg_{number}"),), b"{}")
    return await pool.client_for(hook).send(request)


def test_a_token_fetch_outlives_the_delivery_that_started_it(server: Server) -> None:
    """A token endpoint slower than the hook's timeout (within the token's own 10 s): the
    delivery that asked first times out, and the token its fetch brings serves the next one,
    rather than each delivery starting a fetch of its own that its timeout cuts short."""
    authority = server.authority
    authority.answer_tokens.clear()
    hook = _hook(server, timeout="0.2s")

    async def main() -> list[Attempt]:
        pool = ClientPool(Settings())
        try:
            first = await _deliver(pool, hook, 1)  # its deadline passes while the token waits
            authority.answer_tokens.set()
            return [first, await _deliver(pool, hook, 2)]
        finally:
            await pool.aclose()

    first, second = asyncio.run(main())
    assert first.verdict.kind == "timeout"
    assert (second.verdict.ok, second.verdict.status) == (True, 200)
    assert authority.token_requests == 1
    assert authority.api_calls == 1


def test_deliveries_waiting_on_a_failed_token_fetch_share_its_failure(server: Server) -> None:
    """Ten deliveries wait for one token; the endpoint answers that fetch 503. They all fail
    with it (retried later as an `auth` failure), rather than asking the endpoint one by one."""
    authority = server.authority
    authority.answer_tokens.clear()
    authority.token_status = 503
    hook = _hook(server)

    async def main() -> list[Attempt]:
        pool = ClientPool(Settings())
        try:
            sending = [asyncio.ensure_future(_deliver(pool, hook, n)) for n in range(10)]
            await asyncio.to_thread(authority.token_asked.wait)
            authority.answer_tokens.set()
            return await asyncio.gather(*sending)
        finally:
            await pool.aclose()

    attempts = asyncio.run(main())
    assert {(a.verdict.kind, a.verdict.retryable) for a in attempts} == {("auth", True)}
    assert {a.verdict.error for a in attempts} == {
        "token endpoint answered 503 (temporarily_unavailable)"
    }
    assert authority.token_requests == 1
    assert authority.api_calls == 0


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The CA of a vendor's API: a hook's `tls.ca`."""
    return issue_pki(tmp_path_factory.mktemp("private"), "vendor private ca")


@pytest.fixture(scope="module")
def public_ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA that stands for a public root where a test makes it one (`public_roots`), and is
    unknown everywhere else."""
    return issue_pki(tmp_path_factory.mktemp("public"), "public root ca")


@pytest.fixture
def public_roots(monkeypatch: pytest.MonkeyPatch, public_ca: Pki) -> None:
    """The public roots (`certifi.where()`, read by dispatcher.security.tls) are `public_ca`."""
    monkeypatch.setattr(certifi, "where", lambda: str(public_ca.ca))


def _deliver_once(hook: Hook) -> Attempt:
    async def main() -> Attempt:
        pool = ClientPool(Settings())
        try:
            return await _deliver(pool, hook, 1)
        finally:
            await pool.aclose()

    return asyncio.run(main())


def _deliver_with_a_token_over_tls(
    token_tls: ssl.SSLContext, hook_tls: dict[str, Any]
) -> Authority:
    """One delivery of a hook with `hook_tls` whose token endpoint serves `token_tls`'s
    certificate; the authority behind both. The API is on plain http (a hook's `tls` is the
    same for an https one): what is tested is the token endpoint's TLS."""
    authority = Authority()
    with (
        running(Server(authority=authority)) as api,
        running(Server(token_tls, authority)) as tokens,
    ):
        attempt = _deliver_once(_hook(api, token_server=tokens, tls=hook_tls))
    assert (attempt.verdict.ok, attempt.verdict.status, attempt.verdict.error) == (True, 200, None)
    return authority


@pytest.mark.usefixtures("public_roots")
def test_a_private_ca_for_the_api_still_trusts_the_public_roots_for_the_token_endpoint(
    private_ca: Pki, public_ca: Pki
) -> None:
    """`tls.ca` replaces the public roots for the hook's API only: a token endpoint with a
    publicly signed certificate (an identity provider) was checked against the private CA, and
    every delivery failed as `auth` ("token endpoint unreachable: ConnectError")."""
    authority = _deliver_with_a_token_over_tls(
        public_ca.server_context(), {"ca": str(private_ca.ca)}
    )
    assert (authority.token_requests, authority.api_calls) == (1, 1)


def test_a_token_endpoint_signed_by_the_hooks_own_ca_is_trusted(private_ca: Pki) -> None:
    authority = _deliver_with_a_token_over_tls(
        private_ca.server_context(), {"ca": str(private_ca.ca)}
    )
    assert (authority.token_requests, authority.api_calls) == (1, 1)


def test_tls_verify_false_leaves_the_token_endpoint_verified(public_ca: Pki) -> None:
    """`tls.verify: false` is for the API: the client secret went to a token endpoint whose
    certificate nobody checked. Now the handshake fails before any request is written."""
    with running(Server(public_ca.server_context())) as srv:  # its CA is trusted nowhere here
        attempt = _deliver_once(_hook(srv, tls={"verify": False}))
        assert (attempt.verdict.kind, attempt.verdict.error) == (
            "auth",
            "token endpoint's certificate could not be verified (add its CA to tls.ca)",
        )
        assert srv.handshake_failed.wait(timeout=5)
    assert (srv.authority.token_requests, srv.authority.forms) == (0, [])
    assert srv.authority.api_calls == 0
