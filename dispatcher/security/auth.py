"""Credentials and signatures: small objects that add to a request, so sending code never
handles a secret.

`build_auth` turns a hook's `AuthSpec` into one of these (or None for `none` and `mtls`; the
client certificate lives in the SSL context, see `dispatcher.security.tls`). Each adds to the
plain `Request` of the delivery path (`apply`) and, being an `httpx.Auth`, to an httpx request
(the CLI, the token client, tests) through the same code. OAuth2 tokens come from their endpoint
(`dispatcher.security.oauth2`), one fetch at a time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx

from dispatcher.config.secrets import Secret, resolve
from dispatcher.errors import AuthError, ConfigError
from dispatcher.model.auth import AuthSpec
from dispatcher.model.request import Header, Request
from dispatcher.security.oauth2 import OAuth2ClientCredentials
from dispatcher.security.signing import Signer, check_secret, secret_key

BASIC_USER_COLON = (
    "a Basic username cannot contain ':' (RFC 7617): the receiver reads the username up to the"
    " first ':' and the rest as the password"
)
PLAIN_HTTP_REFUSED = (
    "plain http would send the client secret unencrypted: use https, "
    "or set insecure_token_url: true"
)


AUTHORIZATION = "authorization"
# the auth types whose credential travels in `Authorization` (oauth2: the token it fetches)
IN_AUTHORIZATION = frozenset({"basic", "bearer", "oauth2_client_credentials"})


def credential_header(kind: str, name: str | None = None, where: str | None = None) -> str | None:
    """The header (lower case) an auth of type `kind` puts its credential in, replacing any of
    that name the request has; `name` and `where` are an `api_key`'s. None when it sets none
    (`none`, `mtls`, an API key in the query; `hmac` adds the signature headers, set by the
    dispatcher alone)."""
    if kind in IN_AUTHORIZATION:
        return AUTHORIZATION
    if kind == "api_key" and (where or "header") == "header" and name:
        return name.strip().lower()
    return None


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
        return ((AUTHORIZATION, f"Basic {base64.b64encode(pair).decode()}"),)


class BearerAuth(Credentials):
    """A static bearer token (RFC 6750)."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def headers(self, request: Request) -> tuple[Header, ...]:
        return ((AUTHORIZATION, f"Bearer {self._token.reveal()}"),)


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
        return request.with_url(self._with_key(request.url))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._where == "header":
            yield from super().auth_flow(request)
            return
        request.url = httpx.URL(self._with_key(str(request.url)))
        yield request

    def _with_key(self, url: str) -> str:
        """`url` with the key as its last query parameter, encoded as a placeholder's value is.
        The rest of the query stays as written: read and encoded again as a form, `flag` would
        become `flag=`, `%20` a `+`, and a `%E9` that is no UTF-8 `%EF%BF%BD`. A parameter of
        the key's name (refused at load in a hook's URL) is left out: the key replaces it."""
        base, hash_, fragment = url.partition("#")
        path, _, query = base.partition("?")
        kept = [
            p for p in query.split("&") if p and unquote_plus(p.partition("=")[0]) != self._name
        ]
        kept.append(f"{quote(self._name, safe='')}={quote(self._value.reveal(), safe='')}")
        return f"{path}?{'&'.join(kept)}{hash_}{fragment}"


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
