"""OAuth2 client credentials (RFC 6749 4.4): bearer tokens from a token endpoint, cached and
shared by every request of a hook, one fetch at a time, each token response read within a size
cap and a time bound.

A fetch through the token client is shared by every request that waits for it, and ends as it
ends for all of them: its token, or its failure. It runs on its own, bounded by
`TOKEN_TIMEOUT`: a delivery whose own timeout passes first stops waiting, and the fetch goes on
for the deliveries after it (a token endpoint slower than a hook's timeout would otherwise be
asked once per delivery, each fetch cut short, and never give a token)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from dispatcher.config.secrets import Secret
from dispatcher.errors import AuthError

TOKEN_LEEWAY = 30.0  # seconds before expiry at which a cached token counts as expired
TOKEN_TIMEOUT = 10.0  # for the whole token exchange, not per read
MAX_TOKEN_BYTES = 64 * 1024
SECONDS_TEXT = re.compile(r"\s*[0-9]{1,12}(\.[0-9]{1,9})?\s*", re.ASCII)  # an expires_in as text


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and the clock reading after which it is no longer used."""

    value: Secret
    expires_at: float | None  # None: until the API refuses it


class OAuth2ClientCredentials(httpx.Auth):
    """Bearer tokens from a token endpoint (client credentials grant), cached and shared.

    One refresh at a time, however many requests wait for it. Token requests go through
    `token_client` when given (one fetch shared by all who wait for it, see the module's text;
    its failures become `AuthError`, and the whole exchange is bounded by `TOKEN_TIMEOUT`);
    otherwise through the client sending the request, as extra requests of the auth flow. A
    token response is read up to `MAX_TOKEN_BYTES`, asked for and accepted only without a
    Content-Encoding, so its size is its size after decoding.
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
        self._lock = asyncio.Lock()  # the auth flow's fetches, without a token client
        self._fetching: asyncio.Task[Token] | None = None  # the token client's fetch under way

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._valid()
        for attempt in (1, 2):
            if token is None and self._client is not None:
                token = await self.current()
            elif token is None:
                async with self._lock:
                    token = self._valid()
                    if token is None:
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
        """A valid token: the cached one, else the one the fetch under way brings (started now
        when none is). A caller that stops waiting (cancelled) leaves the fetch running."""
        token = self._valid()
        if token is not None:
            return token
        if self._client is None:
            raise RuntimeError("fetching a token needs the token client")
        fetching = self._fetching
        if fetching is None:
            fetching = self._fetching = asyncio.ensure_future(self._refresh(self._client))
            fetching.add_done_callback(self._fetched)
        return await asyncio.shield(fetching)

    async def aclose(self) -> None:
        """Stop a fetch under way (its token client is about to close)."""
        fetching = self._fetching
        if fetching is not None:
            fetching.cancel()
            await asyncio.wait((fetching,))

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

    async def _refresh(self, client: httpx.AsyncClient) -> Token:
        """A fresh token from the endpoint, cached for every request after it."""
        token = self._accept(*await self._fetch(client))
        self._token = token
        return token

    def _fetched(self, fetching: asyncio.Task[Token]) -> None:
        """The fetch ended: the next request without a valid token starts another."""
        if self._fetching is fetching:
            self._fetching = None
        if not fetching.cancelled():
            fetching.exception()  # retrieved: a failure whose waiters all gave up is no error

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
            raise AuthError(_unreachable(exc)) from None

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
        value = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError("token endpoint response has no access_token")
        if not (value.isascii() and value.isprintable()):
            # RFC 6749 A.12: printable ASCII. Kept, it would fail every request as its header
            # is written, the error quoting the character; never shown, never kept
            raise AuthError(
                "token endpoint returned an access_token no header can carry"
                " (a character other than printable ASCII)"
            )
        token_type = payload.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AuthError("token endpoint returned a token that is not a bearer token")
        return Token(Secret(value), self._expiry(payload.get("expires_in")))

    def _expiry(self, lifetime: object) -> float | None:
        """The clock reading after which a token of `lifetime` seconds is not used; None (until
        the API refuses it) without a positive number of seconds a clock can read. A number
        written as text (`"3599"`, as Azure AD's v1 endpoint writes it) is read as the number."""
        if isinstance(lifetime, str) and SECONDS_TEXT.fullmatch(lifetime):
            lifetime = float(lifetime)
        if not isinstance(lifetime, int | float):
            return None
        try:
            seconds = float(lifetime)
        except OverflowError:  # an integer of hundreds of digits, as JSON allows
            return None
        if not 0 < seconds < math.inf:  # zero, negative, NaN, or no end
            return None
        return self._clock() + seconds - min(self._leeway, seconds / 2)


# OpenSSL's X509_V_ERR_* codes of the refusals where adding a CA to tls.ca would not help
_NOT_ITS_CA = {
    9: "it is not valid yet",  # X509_V_ERR_CERT_NOT_YET_VALID
    10: "it has expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    62: "it is not for the token_url's host",  # X509_V_ERR_HOSTNAME_MISMATCH
}


def _unreachable(exc: httpx.HTTPError) -> str:
    """Why a token request got no answer. A certificate that fails verification is said so
    plainly, with what to do about it: reported as the transport error's name, it read as an
    endpoint that is down. Never the error's own text, which may hold the token_url."""
    refusal = _certificate_refusal(exc)
    if refusal is None:
        return f"token endpoint unreachable: {type(exc).__name__}"
    why = _NOT_ITS_CA.get(refusal.verify_code, "add its CA to tls.ca")
    return f"token endpoint's certificate could not be verified ({why})"


def _certificate_refusal(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """OpenSSL's certificate verification failure behind `exc`, if any: the deepest in its
    chain of causes, since the transport's wrappers may claim the type (aiohttp's does) without
    its `verify_code`."""
    found = None
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: causes can, in principle, form a loop
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found


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
