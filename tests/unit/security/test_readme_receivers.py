"""A receiver written from the README alone: the README's encrypted hook, with each algorithm it
offers, renders and signs a request with the dispatcher's own code, and the README's Python
snippets, run as written there, verify its signature and decrypt its body."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from dispatcher.hooks.loader import load_hooks_text
from dispatcher.model.event import Event
from dispatcher.model.outcome import idempotency_key
from dispatcher.model.request import Request
from dispatcher.pipeline.request import build_request
from dispatcher.security.auth import Credentials, build_auth
from dispatcher.security.encryption import ALGORITHMS, generate_key

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
SECRET = "whsec_" + base64.b64encode(b"erp-secret-0123456789abcdef").decode()
EVENT = Event.from_dict(
    {
        "specversion": "1.0",
        "id": "e-17",
        "type": "order.shipped",
        "source": "/shop",
        "data": {"order_id": "A-17", "total": 12.5},
    }
)
# the README's heading over each algorithm's receiver
RECIPES = {
    "A256GCM": "### JWE (",
    "A128GCM": "### JWE (",
    "A256CBC-HS512": "### JWE (",
    "A128CBC-HS256": "### JWE (",
    "C20P": "### C20P (",
    "fernet": "### Fernet",
}


def snippet(heading: str, language: str) -> str:
    """The first `language` block after `heading` in the README."""
    return README.split(heading, 1)[1].split(f"```{language}\n", 1)[1].split("```", 1)[0]


def sent_by_the_readmes_hook(algorithm: str, key: str, monkeypatch: pytest.MonkeyPatch) -> Request:
    """The request of the README's encrypted hook, set to `algorithm`, for EVENT, signed."""
    text = snippet("## Receiving encrypted payloads", "yaml")
    text, found = re.subn(r"algorithm: A256GCM\b", f"algorithm: {algorithm}", text)
    assert found == 1
    monkeypatch.setenv("ERP_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ERP_KEY", key)
    (hook,) = load_hooks_text(text, "README.md")
    auth = build_auth(hook.auth)
    assert isinstance(auth, Credentials)
    return auth.apply(build_request(hook, EVENT, idempotency_key(EVENT, hook.id)))


def received(algorithm: str, key: str, body: bytes) -> Any:
    """The plaintext the README's receiver for `algorithm` takes out of `body`."""
    names: dict[str, Any] = {"body": body, "KEY": key}
    exec(snippet(RECIPES[algorithm], "python"), names)  # noqa: S102
    if algorithm == "C20P":
        return names["open_c20p"](key, body)
    return names["plaintext"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_readmes_receiver_verifies_and_decrypts_what_its_hook_sends(
    algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(algorithm)
    request = sent_by_the_readmes_hook(algorithm, key, monkeypatch)
    verify = snippet("## Receiving signed webhooks", "python").replace('"whsec_..."', repr(SECRET))
    headers = dict(request.headers)
    # as a receiver runs it: it raises unless a signature matches
    exec(verify, {"body": request.content, "headers": headers})  # noqa: S102
    assert received(algorithm, key, request.content) == b'{"order_id":"A-17","total":12.5}'
