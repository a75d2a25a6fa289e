"""Checks on one hook definition that a JSON Schema cannot express, as (path, message) pairs.

Each check guards its own input types, so it can run on a definition the schema already
rejected: a file's every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from dispatcher.config.durations import parse_duration
from dispatcher.config.secrets import SecretScope, holds_reference
from dispatcher.hooks.clashes import clash_problems
from dispatcher.hooks.conditions import expect_problems, filter_problems
from dispatcher.hooks.credentials import (
    Finding,
    KeyCheck,
    encryption_problems,
    items,
    partial_references,
    secret_problems,
)
from dispatcher.hooks.fields import field_problems, format_problems
from dispatcher.hooks.placeholders import placeholder_problems
from dispatcher.pipeline.render.paths import ROOT_PATHS, parse_path
from dispatcher.pipeline.render.target import (
    CONTROL_IN_HEADERS,
    FORBIDDEN_IN_HEADERS,
    HEADER_CONTROL,
    HEADER_NOT_ASCII,
)
from dispatcher.security.auth import PLAIN_HTTP_REFUSED


def hook_problems(
    raw: Any, *, key_check: KeyCheck | None = None, scope: SecretScope | None = None
) -> list[Finding]:
    """Everything wrong with one definition beyond its shape; with a `scope`, its secret
    references must stay inside it (a definition for the hook store)."""
    if not isinstance(raw, dict):
        return []
    found: list[Finding] = []
    checks = (
        _finite,
        _durations_below_their_floor,
        _events,
        _url,
        _token_url,
        field_problems,
        format_problems,
        _response,
        _headers,
    )
    for check in (*checks, clash_problems, filter_problems, placeholder_problems):
        found.extend(check(raw))
    found.extend(partial_references(raw))
    found.extend(secret_problems(raw, scope))
    found.extend(encryption_problems(raw, key_check, scope))
    return found


def hook_warnings(raw: Any) -> list[Finding]:
    """Things that are allowed but probably not meant."""
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        return []
    parts = urlsplit(raw["url"])
    found: list[Finding] = []
    if parts.scheme.lower() == "http":
        found.append((("url",), "plain http: the body travels unencrypted (use https)"))
    if _plain_token_url(raw):
        says = "plain http token_url: the client secret and tokens travel unencrypted"
        found.append((("auth", "token_url"), says))
    if _verify_off_with_oauth2(raw):
        says = (
            "verification is off for the API only: the token endpoint's certificate is still"
            " verified (a private CA that signs it goes in tls.ca)"
        )
        found.append((("tls", "verify"), says))
    host = (parts.hostname or "").lower()
    if _loopback(host):
        if not raw.get("allow_loopback"):
            says = f"{host} is loopback: sending needs allow_loopback (hook or service)"
            found.append((("url",), says))
    elif not raw.get("allow_private_networks") and _private(host):
        found.append(
            (
                ("url",),
                f"{host} is a private address: sending needs allow_private_networks (hook or service)",
            )
        )
    return found


def _finite(raw: Any, path: tuple[str | int, ...] = ()) -> Iterator[Finding]:
    """NaN and infinity, which YAML (`.nan`, `.inf`) and Python's JSON reader take but JSON
    has not: the schema's limits cannot catch them (`.nan` is neither below nor above any), and
    a timeout, a rate or a value that is one would fail every delivery."""
    if isinstance(raw, float) and not math.isfinite(raw):
        yield path, "must be a finite number (NaN and infinity are not allowed)"
    elif isinstance(raw, dict):
        for key, value in raw.items():
            yield from _finite(value, (*path, key))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            yield from _finite(value, (*path, i))


# durations the schema's `duration` allows (a hook's `pause_after` of 0 means never) that are
# meaningless below a floor: (the least allowed, inclusive or not; what goes wrong below it)
_FLOORS: dict[tuple[str, ...], tuple[float, bool, str]] = {
    ("timeout",): (0.0, False, "must be above 0: no attempt could finish in no time"),
    ("circuit", "window"): (
        1.0,
        True,
        "must be 1s or more: the breaker counts attempts in thirtieths of it",
    ),
    ("circuit", "open_for"): (
        0.0,
        False,
        "must be above 0: an open circuit would never hold a call back",
    ),
}


def _durations_below_their_floor(raw: dict[str, Any]) -> Iterator[Finding]:
    for path, (floor, inclusive, message) in _FLOORS.items():
        value: Any = raw
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or isinstance(value, bool):
            continue
        try:
            seconds = parse_duration(value)
        except (TypeError, ValueError):
            continue  # not a duration: the schema says so
        if seconds < floor or (seconds == floor and not inclusive):
            yield path, message


def _events(raw: dict[str, Any]) -> Iterator[Finding]:
    for i, pattern in items(raw.get("events")):
        if not isinstance(pattern, str):
            continue
        if re.search(r"\s", pattern):
            yield ("events", i), f"event type {pattern!r} contains whitespace"
        depth = 0
        for ch in pattern:
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if depth not in (0, 1):
                break
        if depth != 0:
            yield ("events", i), f"glob {pattern!r} has an unbalanced '[' or ']'"


def _url(raw: dict[str, Any]) -> Iterator[Finding]:
    url = raw.get("url")
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port above 65535
    except ValueError as exc:
        yield ("url",), f"is not a valid URL: {exc}"
        return
    if port == 0:  # as `port:`, 1 to 65535 (a client would read 0 as no port: the default)
        yield ("url",), "port 0 is not a port (use 1 to 65535)"
    if not parts.hostname:
        yield ("url",), "has no host"
    if holds_reference(f"{parts.scheme}://{parts.netloc}"):
        yield ("url",), "a secret reference may stand only in the path and the query"
    if parts.username or parts.password:
        yield ("url",), "must not hold credentials (use auth)"
    if parts.fragment:
        yield ("url",), "must not have a #fragment"


def _response(raw: dict[str, Any]) -> Iterator[Finding]:
    response = raw.get("response")
    if not isinstance(response, dict):
        return
    text = response.get("format") == "text"
    yield from expect_problems(response)
    capture = response.get("capture")
    for name, path in capture.items() if isinstance(capture, dict) else ():
        yield from _response_path(("response", "capture", name), path, text)


def _response_path(where: tuple[str | int, ...], path: Any, text: bool) -> Iterator[Finding]:
    if not isinstance(path, str):
        return
    if text and path.strip() not in ROOT_PATHS:
        yield where, "a text response has no paths: use '' or '.' (the whole body)"
        return
    try:
        parse_path(path)
    except ValueError as exc:
        yield where, f"invalid path: {exc}"


def _headers(raw: dict[str, Any]) -> Iterator[Finding]:
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if isinstance(value, str) and any(ch in value for ch in FORBIDDEN_IN_HEADERS):
            yield ("headers", name), "a header value cannot hold a line break or NUL"
        elif isinstance(value, str) and CONTROL_IN_HEADERS.search(value):  # an escape, a DEL
            yield ("headers", name), HEADER_CONTROL
        if isinstance(value, str) and not value.isascii():  # as a placeholder's value
            yield ("headers", name), HEADER_NOT_ASCII


def _token_url(raw: dict[str, Any]) -> Iterator[Finding]:
    auth = raw.get("auth")
    if _plain_token_url(raw) and isinstance(auth, dict) and not auth.get("insecure_token_url"):
        yield ("auth", "token_url"), PLAIN_HTTP_REFUSED


def _plain_token_url(raw: dict[str, Any]) -> bool:
    if not _oauth2(raw):
        return False
    url = raw["auth"].get("token_url")
    return isinstance(url, str) and url[:7].lower() == "http://"


def _verify_off_with_oauth2(raw: dict[str, Any]) -> bool:
    """`tls.verify: false` on an OAuth2 hook: meant for the API, it leaves the token endpoint
    verified (`dispatcher.security.tls.token_context_for`), which may surprise."""
    tls = raw.get("tls")
    return _oauth2(raw) and isinstance(tls, dict) and tls.get("verify") is False


def _oauth2(raw: dict[str, Any]) -> bool:
    auth = raw.get("auth")
    return isinstance(auth, dict) and auth.get("type") == "oauth2_client_credentials"


def _loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _private(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global
