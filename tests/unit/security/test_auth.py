"""Credentials as httpx.Auth: what each puts on the request, checked at a mock transport."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fake_clock import Clock
from standardwebhooks import Webhook

from dispatcher.config.secrets import Secret
from dispatcher.errors import AuthError, ConfigError, PermanentError
from dispatcher.model.auth import AuthSpec
from dispatcher.model.request import Request
from dispatcher.security import oauth2 as oauth2_module
from dispatcher.security.auth import Credentials, build_auth, credential_header
from dispatcher.security.oauth2 import MAX_TOKEN_BYTES, OAuth2ClientCredentials

WHSEC_OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789abcdef").decode()
WHSEC_NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789abcdef").decode()
Handler = Callable[[httpx.Request], httpx.Response]


def _send(
    auth: httpx.Auth | None,
    handler: Handler,
    *,
    headers: dict[str, str] | None = None,
    url: str = "https://api.test/send?x=1",
) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, auth=auth) as client:
            return await client.post(url, content=b'{"a":1}', headers=headers)

    return asyncio.run(main())


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"headers": dict(request.headers), "url": str(request.url)})


def _auth(raw: dict[str, Any]) -> httpx.Auth | None:
    return build_auth(AuthSpec.from_dict(raw))


def test_basic_sends_the_rfc7617_header() -> None:
    auth = _auth({"type": "basic", "username": "acme", "password": "p@ss:word"})
    seen = _send(auth, _echo).json()["headers"]["authorization"]
    assert seen == "Basic " + base64.b64encode(b"acme:p@ss:word").decode()


def test_a_basic_username_with_a_colon_is_refused_never_sent_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RFC 7617: the receiver reads "acme" as the user and "eu:pw-SECRET" as the password
    monkeypatch.setenv("DUGAA_TEST_USER", "acme:eu")
    for username in ("acme:eu", "${env:DUGAA_TEST_USER}"):
        with pytest.raises(ConfigError, match=r"auth\.username: .*cannot contain ':'") as raised:
            _auth({"type": "basic", "username": username, "password": "pw-SECRET"})
        assert "SECRET" not in str(raised.value)


def test_bearer_sends_the_token() -> None:
    auth = _auth({"type": "bearer", "token": "tkn-123"})
    assert _send(auth, _echo).json()["headers"]["authorization"] == "Bearer tkn-123"


def test_api_key_in_a_header() -> None:
    auth = _auth({"type": "api_key", "name": "X-Api-Key", "value": "k-1", "in": "header"})
    assert _send(auth, _echo).json()["headers"]["x-api-key"] == "k-1"


def test_api_key_in_the_query_keeps_other_parameters() -> None:
    auth = _auth({"type": "api_key", "name": "apikey", "value": "k 1&2", "in": "query"})
    url = httpx.URL(_send(auth, _echo).json()["url"])
    assert url.params["apikey"] == "k 1&2"
    assert url.params["x"] == "1"


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        # a flag, a legacy gateway's latin-1 text, a space as a placeholder writes it, brackets
        (
            "https://api.test/send?json&text=Caf%E9&to=a%20b&f[x]=1,2",
            "https://api.test/send?json&text=Caf%E9&to=a%20b&f[x]=1,2&api%20key=k%2B%2F%3D%26%201",
        ),
        ("https://api.test/send", "https://api.test/send?api%20key=k%2B%2F%3D%26%201"),
        ("https://api.test/send?", "https://api.test/send?api%20key=k%2B%2F%3D%26%201"),
        # a parameter of the key's name (refused at load) is replaced, as before
        (
            "https://api.test/send?api+key=x&y=1",
            "https://api.test/send?y=1&api%20key=k%2B%2F%3D%26%201",
        ),
    ],
)
def test_api_key_in_the_query_is_added_to_the_query_as_written(url: str, sent: str) -> None:
    """Read and encoded again as a form, the query changed: `json` became `json=`, `%E9` (not
    UTF-8) became `%EF%BF%BD`, `%20` a `+`, `[x]` `%5Bx%5D`, on the wire and in every path."""
    auth = _auth({"type": "api_key", "name": "api key", "value": "k+/=& 1", "in": "query"})
    assert isinstance(auth, Credentials)
    assert auth.apply(Request("POST", url, (), b"{}")).url == sent
    assert _send(auth, _echo, url=url).json()["url"] == sent


@pytest.mark.parametrize("secrets", [[WHSEC_NEW], [WHSEC_OLD, WHSEC_NEW]], ids=["one", "rotation"])
def test_hmac_requests_verify_with_the_reference_library(secrets: list[str]) -> None:
    raw = {"type": "hmac", "secrets": secrets} if len(secrets) > 1 else {"secret": secrets[0]}
    auth = _auth({"type": "hmac", **raw})
    verified: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        for secret in secrets:  # a receiver holding any one of the secrets accepts
            Webhook(secret).verify(request.content, dict(request.headers))
            verified.append(secret)
        return httpx.Response(204)

    assert _send(auth, receiver, headers={"webhook-id": "msg_1"}).status_code == 204
    assert verified == secrets


def test_hmac_without_webhook_id_is_an_auth_error() -> None:
    auth = _auth({"type": "hmac", "secret": WHSEC_NEW})
    with pytest.raises(AuthError, match="webhook-id") as caught:
        _send(auth, _echo)
    assert caught.value.kind == "auth"
    assert isinstance(caught.value, PermanentError)


def test_hmac_with_a_malformed_secret_fails_at_build_without_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        _auth({"type": "hmac", "secret": "whsec_%%%secret%%%"})
    assert "%%%secret%%%" not in str(caught.value)


@pytest.mark.parametrize("kind", ["none", "mtls"])
def test_none_and_mtls_need_no_auth_object(kind: str) -> None:
    assert _auth({"type": kind, "cert": "c.pem", "key": "k.pem"}) is None


def test_unknown_type_and_missing_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown auth type"):
        _auth({"type": "kerberos"})
    with pytest.raises(ConfigError, match=r"auth\.username"):
        _auth({"type": "basic", "password": "x"})


def test_auth_objects_do_not_show_secrets() -> None:
    specs = [
        {"type": "basic", "username": "u", "password": "pw-SECRET"},
        {"type": "bearer", "token": "tk-SECRET"},
        {"type": "api_key", "name": "k", "value": "ak-SECRET"},
        {
            "type": "oauth2_client_credentials",
            "token_url": "https://t.test/token",
            "client_id": "c",
            "client_secret": "cs-SECRET",
        },
    ]
    for raw in specs:
        auth = _auth(raw)
        assert "SECRET" not in repr(auth)
        assert "SECRET" not in repr(vars(auth))


class TokenServer:
    """A token endpoint and an API behind a mock transport; counts what each was asked."""

    def __init__(self, *, expires_in: int | None = 60, token_status: int = 200) -> None:
        self.expires_in, self.token_status = expires_in, token_status
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.api_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            assert (
                request.headers["authorization"]
                == "Basic " + base64.b64encode(b"client-1:s3cr%2Bt").decode()
            )
            assert b"grant_type=client_credentials" in request.content
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client"})
            token = f"tok-{len(self.issued)}"
            self.issued.append(token)
            self.valid.add(token)
            body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, content=json.dumps(body).encode())
        self.api_calls += 1
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        return httpx.Response(200 if presented in self.valid else 401)


def _oauth(clock: Clock, client: httpx.AsyncClient | None) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        "https://auth.test/token", "client-1", Secret("s3cr+t"), token_client=client, clock=clock
    )


def _run(server: TokenServer, clock: Clock, steps: Callable[..., Any], *, via: str) -> Any:
    async def main() -> Any:
        transport = httpx.MockTransport(server)
        async with httpx.AsyncClient(transport=transport) as client:
            auth = _oauth(clock, client if via == "token_client" else None)
            return await steps(client, auth)

    return asyncio.run(main())


@pytest.mark.parametrize("via", ["token_client", "auth_flow"])
def test_oauth2_token_is_cached_until_expiry_minus_leeway(via: str) -> None:
    server, clock = TokenServer(expires_in=60), Clock()

    async def steps(client: httpx.AsyncClient, auth: httpx.Auth) -> list[int]:
        codes = [(await client.post("https://api.test/x", auth=auth)).status_code]
        clock.now += 29  # 60 s lifetime, 30 s leeway: still fresh
        codes.append((await client.post("https://api.test/x", auth=auth)).status_code)
        clock.now += 1.5
        codes.append((await client.post("https://api.test/x", auth=auth)).status_code)
        return codes

    assert _run(server, clock, steps, via=via) == [200, 200, 200]
    assert server.issued == ["tok-0", "tok-1"]
    assert server.api_calls == 3


@pytest.mark.parametrize("via", ["token_client", "auth_flow"])
def test_oauth2_401_drops_the_token_and_retries_once(via: str) -> None:
    server, clock = TokenServer(expires_in=None), Clock()

    async def steps(client: httpx.AsyncClient, auth: httpx.Auth) -> int:
        await client.post("https://api.test/x", auth=auth)
        server.valid.clear()  # the API forgets the token before it would expire
        return (await client.post("https://api.test/x", auth=auth)).status_code

    assert _run(server, clock, steps, via=via) == 200
    assert server.issued == ["tok-0", "tok-1"]
    assert server.api_calls == 3


def test_oauth2_a_second_401_is_an_auth_error() -> None:
    server, clock = TokenServer(), Clock()

    async def steps(client: httpx.AsyncClient, auth: httpx.Auth) -> None:
        server.valid = _NeverValid()
        await client.post("https://api.test/x", auth=auth)

    with pytest.raises(AuthError) as caught:
        _run(server, clock, steps, via="token_client")
    assert (caught.value.kind, caught.value.status) == ("auth", 401)
    assert server.api_calls == 2


class _NeverValid(set[str]):
    def add(self, element: str) -> None:
        pass


def test_oauth2_token_endpoint_refusal_is_an_auth_error_without_the_secret() -> None:
    server, clock = TokenServer(token_status=401), Clock()

    async def steps(client: httpx.AsyncClient, auth: httpx.Auth) -> None:
        await client.post("https://api.test/x", auth=auth)

    with pytest.raises(AuthError, match=r"answered 401 \(invalid_client\)") as caught:
        _run(server, clock, steps, via="token_client")
    assert "s3cr" not in str(caught.value)
    assert server.api_calls == 0


def test_oauth2_unreachable_token_endpoint_is_an_auth_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as tokens:
            auth = _oauth(Clock(), tokens)
            async with httpx.AsyncClient(transport=httpx.MockTransport(_echo)) as client:
                await client.post("https://api.test/x", auth=auth)

    with pytest.raises(AuthError, match="unreachable: ConnectError"):
        asyncio.run(main())


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (20, "add its CA to tls.ca"),  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        (19, "add its CA to tls.ca"),  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        (10, "it has expired"),
        (62, "it is not for the token_url's host"),
    ],
)
def test_oauth2_a_token_endpoint_certificate_that_fails_is_said_so(code: int, why: str) -> None:
    """Reported as "unreachable: ConnectError", a certificate refused read as an endpoint down;
    the transport's wrappers (aiohttp's claims the type itself) stand between."""

    def refuse(request: httpx.Request) -> httpx.Response:
        refusal = ssl.SSLCertVerificationError(1, "certificate verify failed")
        refusal.verify_code = code
        wrapper = ssl.SSLCertVerificationError("Cannot connect to host idp.test:443")
        wrapper.__cause__ = refusal
        raise httpx.ConnectError("Cannot connect", request=request) from wrapper

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as tokens:
            auth = _oauth(Clock(), tokens)
            async with httpx.AsyncClient(transport=httpx.MockTransport(_echo)) as client:
                await client.post("https://api.test/x", auth=auth)

    with pytest.raises(AuthError) as caught:
        asyncio.run(main())
    assert str(caught.value) == f"token endpoint's certificate could not be verified ({why})"
    assert caught.value.kind == "auth"


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"token_type":"bearer"}', b'{"access_token":"t","token_type":"mac"}'],
)
def test_oauth2_unusable_token_responses_are_auth_errors(body: bytes) -> None:
    async def main() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post("https://api.test/x", auth=_oauth(Clock(), client))

    with pytest.raises(AuthError):
        asyncio.run(main())


@pytest.mark.parametrize(
    "token", ["t\u20ac-SECRET", "caf\u00e9-SECRET", "two\nlines-SECRET", ""], ids=repr
)
def test_oauth2_a_token_no_header_can_carry_is_refused_unkept_and_unshown(token: str) -> None:
    """RFC 6749 A.12: printable ASCII. Anything else was kept and failed every request as it was
    written (a character beyond latin-1 quoted in the error: a piece of the token), or went out
    in latin-1; the next request asks the endpoint again."""
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        return httpx.Response(200, json={"access_token": token, "token_type": "Bearer"})

    async def main() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            auth = _oauth(Clock(), client)
            errors = []
            for _ in range(2):
                with pytest.raises(AuthError) as caught:
                    await auth.current()
                errors.append(str(caught.value))
            return errors

    errors = asyncio.run(main())
    assert fetched == ["/token", "/token"]
    assert all("SECRET" not in error and "\\u" not in error for error in errors)


def test_oauth2_a_lifetime_longer_than_any_clock_reads_is_no_error() -> None:
    """An `expires_in` integer of hundreds of digits (the endpoint's to write) made every
    delivery an `internal` failure (OverflowError): such a token is kept until it is refused."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = b'{"access_token": "tok", "token_type": "Bearer", "expires_in": 1%s}' % (b"0" * 400)
        return httpx.Response(200, content=body)

    async def main() -> tuple[str, float | None]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            token = await _oauth(Clock(), client).current()
            return token.value.reveal(), token.expires_at

    assert asyncio.run(main()) == ("tok", None)


def test_oauth2_refuses_a_sync_client() -> None:
    auth = _oauth(Clock(), None)
    with httpx.Client(transport=httpx.MockTransport(_echo)) as client, pytest.raises(RuntimeError):
        client.get("https://api.test/x", auth=auth)


def _token_reply(response: httpx.Response, *, via: str = "token_client") -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return response if request.url.path == "/token" else httpx.Response(200)

    async def steps(client: httpx.AsyncClient, auth: httpx.Auth) -> int:
        return (await client.post("https://api.test/x", auth=auth)).status_code

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await steps(client, _oauth(Clock(), client if via == "token_client" else None))

    return asyncio.run(main())


@pytest.mark.parametrize("via", ["token_client", "auth_flow"])
def test_oauth2_token_response_larger_than_the_cap_is_an_auth_error(via: str) -> None:
    huge = json.dumps({"access_token": "t" * (MAX_TOKEN_BYTES + 10), "token_type": "Bearer"})
    with pytest.raises(AuthError, match=f"larger than {MAX_TOKEN_BYTES} bytes"):
        _token_reply(httpx.Response(200, content=huge.encode()), via=via)


@pytest.mark.parametrize("via", ["token_client", "auth_flow"])
def test_oauth2_compressed_token_response_is_refused_before_it_is_inflated(via: str) -> None:
    bomb = gzip.compress(b'{"access_token": "' + b"a" * 10_000_000 + b'"}')
    headers = {"content-encoding": "gzip"}
    with pytest.raises(AuthError, match="Content-Encoding 'gzip'"):
        _token_reply(httpx.Response(200, content=bomb, headers=headers), via=via)


class _Dribble(httpx.AsyncByteStream):
    """A token body that never ends: one byte every 50 ms, each well within a read timeout."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.05)
            yield b" "


def test_oauth2_token_exchange_is_bounded_in_time_as_a_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(oauth2_module, "TOKEN_TIMEOUT", 0.3)
    with pytest.raises(AuthError, match=r"no answer within 0\.3s"):
        _token_reply(httpx.Response(200, stream=_Dribble()))


def test_an_http_token_url_needs_the_insecure_opt_in() -> None:
    raw = {
        "type": "oauth2_client_credentials",
        "token_url": "http://auth.test/token",
        "client_id": "c",
        "client_secret": "s",
    }
    with pytest.raises(ConfigError, match="plain http would send the client secret"):
        build_auth(AuthSpec.from_dict(raw))
    assert build_auth(AuthSpec.from_dict({**raw, "insecure_token_url": True})) is not None


def test_references_in_keys_that_are_no_secret_are_sent_as_their_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUGAA_TEST_USER", "alice")
    monkeypatch.setenv("DUGAA_TEST_CLIENT", "client-1")
    monkeypatch.setenv("DUGAA_TEST_TOKEN_URL", "https://auth.test/token")
    basic = _auth({"type": "basic", "username": "${env:DUGAA_TEST_USER}", "password": "pw"})
    sent = _send(basic, _echo).json()["headers"]["authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == b"alice:pw"
    oauth = build_auth(
        AuthSpec.from_dict(
            {
                "type": "oauth2_client_credentials",
                "token_url": "${env:DUGAA_TEST_TOKEN_URL}",
                "client_id": "${env:DUGAA_TEST_CLIENT}",
                "client_secret": "s3cr+t",
            }
        )
    )
    assert isinstance(oauth, OAuth2ClientCredentials)
    request = oauth.token_request()
    assert str(request.url) == "https://auth.test/token"
    credentials = base64.b64decode(request.headers["authorization"].removeprefix("Basic "))
    assert credentials == b"client-1:s3cr%2Bt"


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "none"},
        {"type": "basic", "username": "acme", "password": "pw"},
        {"type": "bearer", "token": "t0k"},
        {"type": "api_key", "name": "X-Api-Key", "value": "k3y"},
        {"type": "api_key", "name": "x-api-key", "value": "k3y", "in": "query"},
        {"type": "hmac", "secret": WHSEC_OLD},
    ],
)
def test_credential_header_names_the_one_header_a_credential_replaces(raw: dict[str, Any]) -> None:
    """The hook checks refuse a hook's own header of that name (it would be replaced unseen)."""
    named = credential_header(raw["type"], raw.get("name"), raw.get("in"))
    ours = ("Authorization", "X-Api-Key", "X-Other")
    request = Request("POST", "https://api.test/send", (("webhook-id", "msg_1"),), b"{}")
    request = request.with_headers(*((name, "static") for name in ours))
    auth = _auth(raw)
    applied = auth.apply(request) if isinstance(auth, Credentials) else request
    replaced = {name.lower() for name in ours if applied.header(name) != "static"}
    assert replaced == ({named} if named else set())


@pytest.mark.parametrize(
    ("lifetime", "expires_at"),
    [('"3599"', 1000.0 + 3599 - 30), ('" 60 "', 1000.0 + 60 - 30), ('"soon"', None), ('""', None)],
)
def test_oauth2_a_lifetime_written_as_text_is_read_as_its_number(
    lifetime: str, expires_at: float | None
) -> None:
    """Some identity providers write `expires_in` as a string ("3599": Azure AD's v1 endpoint);
    read as no expiry, such a token was kept until the API refused it."""

    def handler(request: httpx.Request) -> httpx.Response:
        head = b'{"access_token": "tok", "token_type": "Bearer", "expires_in": '
        return httpx.Response(200, content=head + lifetime.encode() + b"}")

    async def main() -> float | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return (await _oauth(Clock(), client).current()).expires_at

    assert asyncio.run(main()) == expires_at
