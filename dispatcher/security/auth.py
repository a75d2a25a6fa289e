"""Credentials and signatures: small objects that add to a request, so sending code never
handles a secret.

`build_auth` turns a hook's `AuthSpec` into one of these (or None for `none` and `mtls`; the
client certificate lives in the SSL context, see `dispatcher.security.tls`). Each adds to the
plain `Request` of the delivery path (`apply`) and, being an `httpx.Auth`, to an httpx request
(the CLI, the token client, tests) through the same code. OAuth2 tokens come from their endpoint
(`OAuth2ClientCredentials.current`), one fetch at a time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from dispatcher.config.secrets import Secret, resolve
from dispatcher.errors import AuthError, ConfigError
from dispatcher.model.hook import AuthSpec
from dispatcher.model.request import Header, Request
from dispatcher.security.signing import Signer, check_secret, secret_key

TOKEN_LEEWAY = 30.0  # seconds before expiry at which a cached token counts as expired
TOKEN_TIMEOUT = 10.0  # for the whole token exchange, not per read
MAX_TOKEN_BYTES = 64 * 1024
BASIC_USER_COLON = (
    "a Basic username cannot contain ':' (RFC 7617): the receiver reads the username up to the"
    " first ':' and the rest as the password"
)
PLAIN_HTTP_REFUSED = (
    "plain http would send the client secret unencrypted: use https, "
    "or set insecure_token_url: true"
)


class Credentials(httpx.Auth):
    """Credentials that add headers to a request, the same for every request of a hook."""

    requires_request_body = True

    def headers(self, request: Request) -> tuple[Header, ...]:
        """The headers to set on `request`."""
        raise NotImplementedError

    def apply(self, request: Request) -> Request:
        """`request` with these credentials."""
        return request.with_headers(*self.headers(request))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        plain = Request(
            request.method, str(request.url), tuple(request.headers.items()), request.content
        )
        for name, value in self.headers(plain):
            request.headers[name] = value
        yield request


class BasicAuth(Credentials):
    """HTTP Basic credentials (RFC 7617)."""

    def __init__(self, username: str, password: Secret) -> None:
        self._username = username
        self._password = password

    def headers(self, request: Request) -> tuple[Header, ...]:
        pair = f"{self._username}:{self._password.reveal()}".encode()
        return (("authorization", f"Basic {base64.b64encode(pair).decode()}"),)


class BearerAuth(Credentials):
    """A static bearer token (RFC 6750)."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def headers(self, request: Request) -> tuple[Header, ...]:
        return (("authorization", f"Bearer {self._token.reveal()}"),)


class ApiKeyAuth(Credentials):
    """An API key sent as a header or as a query parameter."""

    def __init__(self, name: str, value: Secret, *, where: str = "header") -> None:
        if where not in ("header", "query"):
            raise ConfigError(f"auth.in: must be header or query, not {where!r}")
        self._name, self._value, self._where = name, value, where

    def headers(self, request: Request) -> tuple[Header, ...]:
        return ((self._name, self._value.reveal()),) if self._where == "header" else ()

    def apply(self, request: Request) -> Request:
        if self._where == "header":
            return super().apply(request)
        return request.with_url(self._with_key(httpx.URL(request.url)))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._where == "header":
            yield from super().auth_flow(request)
            return
        request.url = httpx.URL(self._with_key(request.url))
        yield request

    def _with_key(self, url: httpx.URL) -> str:
        return str(url.copy_merge_params({self._name: self._value.reveal()}))


class StandardWebhooksAuth(Credentials):
    """Signs the exact body sent, per Standard Webhooks; the sender sets `webhook-id`.
    The secrets are decoded and keyed once, here, not per request."""

    def __init__(self, secrets: Sequence[Secret], *, clock: Callable[[], float] = time.time):
        self._signer = Signer([secret_key(s) for s in secrets])
        self._clock = clock

    def headers(self, request: Request) -> tuple[Header, ...]:
        msg_id = request.header("webhook-id")
        if not msg_id:
            raise AuthError("hmac signing needs the webhook-id header on the request")
        timestamp = int(self._clock())
        signature = self._signer.sign(msg_id, timestamp, request.content)
        return (("webhook-timestamp", str(timestamp)), ("webhook-signature", signature))

    def apply(self, request: Request) -> Request:
        # the two headers are the sender's alone: appended, not looked for among the others
        headers = request.headers + self.headers(request)
        return Request(request.method, request.url, headers, request.content)


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and the clock reading after which it is no longer used."""

    value: Secret
    expires_at: float | None  # None: until the API refuses it


class OAuth2ClientCredentials(httpx.Auth):
    """Bearer tokens from a token endpoint (client credentials grant), cached and shared.

    One refresh at a time, however many requests wait for it. Token requests go through
    `token_client` when given (its failures become `AuthError`, and the whole exchange is
    bounded by `TOKEN_TIMEOUT`); otherwise through the client sending the request, as extra
    requests of the auth flow. A token response is read up to `MAX_TOKEN_BYTES`, asked for
    and accepted only without a Content-Encoding, so its size is its size after decoding.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: Secret,
        *,
        scope: str | None = None,
        audience: str | None = None,
        token_client: httpx.AsyncClient | None = None,
        leeway: float = TOKEN_LEEWAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._form = {"grant_type": "client_credentials"}
        if scope:
            self._form["scope"] = scope
        if audience:
            self._form["audience"] = audience
        self._client = token_client
        self._leeway = leeway
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._valid()
        for attempt in (1, 2):
            if token is None:
                async with self._lock:
                    token = self._valid()
                    if token is None:
                        if self._client is not None:
                            status, body = await self._fetch(self._client)
                        else:
                            response = yield self.token_request()
                            status, body = (
                                response.status_code,
                                await _token_body(response, streamed=False),
                            )
                        token = self._accept(status, body)
                        self._token = token
            request.headers["Authorization"] = f"Bearer {token.value.reveal()}"
            response = yield request
            if response.status_code != 401:
                return
            if attempt == 2:
                raise AuthError("the API refused a freshly fetched token (401)", status=401)
            if self._token is token:  # others may already have replaced it
                self._token = None
            token = None

    async def current(self) -> Token:
        """A valid token: the cached one, else one from the token client (one fetch at a time)."""
        token = self._valid()
        if token is not None:
            return token
        if self._client is None:
            raise RuntimeError("fetching a token needs the token client")
        async with self._lock:
            token = self._valid()
            if token is None:
                token = self._accept(*await self._fetch(self._client))
                self._token = token
        return token

    def refused(self, token: Token) -> None:
        """The API answered 401 to `token`: the next request fetches a fresh one."""
        if self._token is token:  # others may already have replaced it
            self._token = None

    def token_request(self) -> httpx.Request:
        """The token request: form body, client authenticated by HTTP Basic (RFC 6749 2.3.1)."""
        pair = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret.reveal())}"
        return httpx.Request(
            "POST",
            self._token_url,
            data=self._form,
            headers={
                "Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}",
                "Accept": "application/json",
                "Accept-Encoding": "identity",
            },
            extensions={"timeout": httpx.Timeout(TOKEN_TIMEOUT).as_dict()},
        )

    def _valid(self) -> Token | None:
        token = self._token
        if token is None or (token.expires_at is not None and self._clock() >= token.expires_at):
            return None
        return token

    async def _fetch(self, client: httpx.AsyncClient) -> tuple[int, bytes]:
        """The status and body of a token response, within `TOKEN_TIMEOUT` as a whole."""
        try:
            async with asyncio.timeout(TOKEN_TIMEOUT):
                response = await client.send(self.token_request(), stream=True)
                try:
                    return response.status_code, await _token_body(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise AuthError(f"token endpoint gave no answer within {TOKEN_TIMEOUT:g}s") from None
        except httpx.HTTPError as exc:
            raise AuthError(f"token endpoint unreachable: {type(exc).__name__}") from None

    def _accept(self, status: int, body: bytes) -> Token:
        """The token in a token endpoint response; `AuthError` naming what is wrong otherwise."""
        try:
            payload: Any = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if status != 200:
            code = payload.get("error") if isinstance(payload, dict) else None
            detail = f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
            raise AuthError(f"token endpoint answered {status}{detail}", status=status)
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise AuthError("token endpoint response has no access_token")
        token_type = payload.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AuthError("token endpoint returned a token that is not a bearer token")
        lifetime = payload.get("expires_in")
        expires_at = None
        if isinstance(lifetime, int | float) and lifetime > 0:
            expires_at = self._clock() + lifetime - min(self._leeway, lifetime / 2)
        return Token(Secret(payload["access_token"]), expires_at)


async def _token_body(response: httpx.Response, *, streamed: bool = True) -> bytes:
    """The raw body of a token response, refused past `MAX_TOKEN_BYTES` or when encoded (its
    decoded size could be any multiple of what arrives).

    Not `streamed`: the response belongs to an auth flow, which httpx reads in full itself once
    the flow goes on, so it is refused on its declared length before it is read."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise AuthError(f"token endpoint answered in Content-Encoding {coding[:20]!r}, not asked")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_TOKEN_BYTES:
        raise AuthError(f"token endpoint response is larger than {MAX_TOKEN_BYTES} bytes")
    if response.is_stream_consumed or not streamed:
        body = await response.aread()
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_TOKEN_BYTES:
                break
        body = b"".join(chunks)
    if len(body) > MAX_TOKEN_BYTES:
        raise AuthError(f"token endpoint response is larger than {MAX_TOKEN_BYTES} bytes")
    return body


def build_auth(
    spec: AuthSpec, *, token_client: httpx.AsyncClient | None = None
) -> httpx.Auth | None:
    """The `httpx.Auth` for a hook's `AuthSpec`; None for `none` and `mtls` (see tls.py)."""
    kind = spec.type
    if kind in ("none", "mtls"):
        return None
    if kind == "basic":
        username = _text(spec, "username")
        if ":" in username:
            raise ConfigError(f"auth.username: {BASIC_USER_COLON}")
        return BasicAuth(username, _secret(spec, "password"))
    if kind == "bearer":
        return BearerAuth(_secret(spec, "token"))
    if kind == "api_key":
        where = spec.get("in", "header")
        return ApiKeyAuth(_text(spec, "name"), _secret(spec, "value"), where=where)
    if kind == "oauth2_client_credentials":
        token_url = _text(spec, "token_url")
        if token_url[:7].lower() == "http://" and spec.get("insecure_token_url") is not True:
            raise ConfigError(f"auth.token_url: {PLAIN_HTTP_REFUSED}")
        return OAuth2ClientCredentials(
            token_url,
            _text(spec, "client_id"),
            _secret(spec, "client_secret"),
            scope=_text(spec, "scope", required=False) or None,
            audience=_text(spec, "audience", required=False) or None,
            token_client=token_client,
        )
    if kind == "hmac":
        many = spec.get("secrets")
        secrets = [resolve(s) for s in many] if many else [_secret(spec, "secret")]
        for secret in secrets:
            problem = check_secret(secret)
            if problem:
                raise ConfigError(f"auth.secret: {problem}")
        return StandardWebhooksAuth(secrets)
    raise ConfigError(f"auth.type: unknown auth type {kind!r}")


def _required(spec: AuthSpec, name: str) -> Any:
    value = spec.get(name)
    if value is None or value == "":
        raise ConfigError(f"auth.{name}: required for auth type {spec.type}")
    return value


def _text(spec: AuthSpec, name: str, *, required: bool = True) -> str:
    """A setting that is no secret, as sent: a reference (`${env:CLIENT_ID}`, resolved at load
    into a `Secret` so that it is shown masked) is sent as its value, never as `***`."""
    value = _required(spec, name) if required else spec.get(name)
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


def _secret(spec: AuthSpec, name: str) -> Secret:
    value = _required(spec, name)
    return value if isinstance(value, Secret) else resolve(str(value))
