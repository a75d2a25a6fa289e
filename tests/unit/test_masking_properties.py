"""Masking as a property: for any hook whose secrets are drawn at random, no rendering of the
hook shows a secret's value, in any usual encoding.

The renderings: `hooks show` (cli/output.hook_yaml), `hooks list`, hooks/describe.describe (what
the admin API shows), ops/trial's shown request (`hooks test`), the text of a failed attempt
whose library message names the request URL, and the outcome and dead letter of that failure.
Secrets stand in auth, in encryption keys, and as references in the URL's path and query, in
a header and in a field's constant. The request on the wire does carry the api key: that is
checked too, so a rendering that dropped it by accident would not pass for masking.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leak_support import secret_forms
from prometheus_client import CollectorRegistry

from dispatcher.cli.output import hook_table, hook_yaml, request_text
from dispatcher.engine.deliver import Deliverer
from dispatcher.hooks.describe import describe
from dispatcher.http.sender import HookClient
from dispatcher.metrics import Metrics
from dispatcher.model.deadletter import dead_letter_headers
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.ops.trial import prepare
from dispatcher.security.auth import build_auth
from dispatcher.security.encryption import b64u

EVENT = Event(id="ev-1", type="order.paid", source="/shop", data={"order": "o-1", "total": 10})
RECORD = Record("events", 0, 7, b"k", json.dumps({"id": "ev-1"}).encode(), ())
ALPHABET = string.ascii_letters + string.digits + "/+=&%:@._~-"
REFERENCED = "DUGAA_PROPERTY_REFERENCED"  # an env variable a non-secret key refers to

# a marker no rendering holds by chance (a drawn "idempotency_" would be found in any outcome)
secret_text = st.text(ALPHABET, min_size=9, max_size=40).map(lambda s: "Zq9" + s)


@st.composite
def hooks(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A hook definition and the secret values it holds (as written or as referred to)."""
    secrets: list[str] = []

    def secret() -> str:
        value = draw(secret_text)
        secrets.append(value)
        return value

    kind = draw(
        st.sampled_from(
            ["basic", "bearer", "api_key_header", "api_key_query", "oauth2", "hmac", "none"]
        )
    )
    auth: dict[str, Any]
    if kind == "basic":
        auth = {"type": "basic", "username": f"${{env:{REFERENCED}}}", "password": secret()}
    elif kind == "bearer":
        auth = {"type": "bearer", "token": secret()}
    elif kind.startswith("api_key"):
        where = kind.removeprefix("api_key_")
        name = draw(st.sampled_from(["code", "X-Api-Key", "apikey", "x-vendor"]))
        auth = {"type": "api_key", "name": name, "value": secret(), "in": where}
    elif kind == "oauth2":
        auth = {
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/token",
            "client_id": f"${{env:{REFERENCED}}}",
            "client_secret": secret(),
        }
    elif kind == "hmac":
        whsec = "whsec_" + base64.b64encode(draw(st.binary(min_size=24, max_size=32))).decode()
        secrets += [whsec, whsec.removeprefix("whsec_")]
        auth = {"type": "hmac", "secret": whsec}
    else:
        auth = {"type": "none"}
    url = draw(st.sampled_from(["https://api.example.com/in", "https://api.example.com/in?x=1"]))
    places = draw(st.sets(st.sampled_from(["path", "query", "header", "field"])))
    references = {place: f"DUGAA_PROPERTY_{place.upper()}" for place in places}
    if "path" in places:
        url = url.replace("/in", f"/${{env:{references['path']}}}/in")
    if "query" in places:
        url += ("&" if "?" in url else "?") + f"sig=${{env:{references['query']}}}"
    raw: dict[str, Any] = {
        "id": "prop",
        "events": ["order.paid"],
        "url": url,
        "auth": auth,
        "retry": {"max_attempts": 1},  # one failed attempt ends the pair
    }
    if "header" in places:
        raw["headers"] = {"X-Vendor": f"${{env:{references['header']}}}", "X-Tenant": "acme"}
    if "field" in places:
        raw["fields"] = [
            {"name": "order", "from": "data.order"},
            {"name": "pin", "value": f"${{env:{references['field']}}}"},
        ]
    for name in references.values():
        os.environ[name] = secret()
    if draw(st.booleans()):
        key = b64u(draw(st.binary(min_size=32, max_size=32)))
        secrets.append(key)
        raw["encryption"] = {"algorithm": "A256GCM", "key": key, "key_id": "k1"}
    return raw, secrets


@contextmanager
def referenced(value: str) -> Iterator[None]:
    os.environ[REFERENCED] = value
    try:
        yield
    finally:
        for name in [n for n in os.environ if n.startswith("DUGAA_PROPERTY_")]:
            del os.environ[name]


def failed_attempt(hook: Hook) -> tuple[Outcome, str]:
    """The outcome of one attempt whose library error names the URL on the wire, as aiohttp's
    "Can not write request body for <url>" does, and the URL that was on the wire."""
    wire: list[str] = []

    def fail(request: httpx.Request) -> httpx.Response:
        wire.append(f"{request.url} {request.headers.get('authorization', '')}")
        raise httpx.WriteError(f"Can not write request body for {request.url}")

    async def main() -> Outcome:
        deliverer = Deliverer(Metrics(CollectorRegistry()), (), 0, clock=lambda: 1000.0)
        pair = Pair(RECORD, EVENT, hook, Source("events", 0, 7), idempotency_key(EVENT, hook.id))
        client = HookClient(hook, httpx.MockTransport(fail), build_auth(hook.auth))
        try:
            result = await deliverer.deliver(pair, client)
        finally:
            await client.aclose()
        assert isinstance(result, Outcome)
        return result

    outcome = asyncio.run(main())
    return outcome, " ".join(wire)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# the referenced value may be a Basic username, which never holds a colon (RFC 7617)
@given(hooks(), secret_text.filter(lambda text: ":" not in text))
def test_no_rendering_of_a_hook_shows_a_secret(
    drawn: tuple[dict[str, Any], list[str]], referenced_value: str
) -> None:
    raw, secrets = drawn
    with referenced(referenced_value):
        hook = Hook.from_dict(raw)
    referenced_is_used = "${env:" in json.dumps(raw["auth"])
    if referenced_is_used:
        secrets = [*secrets, referenced_value]
    trial = prepare(hook, EVENT)
    assert trial.shown is not None
    renderings = {
        "hooks show": hook_yaml(hook),
        "hooks list": hook_table([hook]),
        "describe (admin API)": json.dumps(describe(hook), default=str),
        "hooks test": request_text(trial.shown) + json.dumps(trial.shown.as_dict(), default=str),
    }
    if hook.auth.type != "oauth2_client_credentials":  # its token comes from an endpoint
        outcome, wire = failed_attempt(hook)
        letter = dead_letter_headers(outcome, RECORD, failed_at=1000.0)
        renderings["error text"] = outcome.error or ""
        renderings["outcome"] = json.dumps(outcome.to_record())
        renderings["dead letter"] = repr(letter)
        if hook.auth.type in ("api_key", "basic", "bearer") and hook.auth.get("in") == "query":
            on_the_wire = secret_forms("key", secrets[0]).values()  # the key was on the wire
            assert any(form in wire for form in on_the_wire)
    leaked = [
        f"{where}: {secret!r} as {form!r}"
        for where, text in renderings.items()
        for secret in secrets
        for form in secret_forms("secret", secret).values()
        if form in text
    ]
    assert leaked == []
