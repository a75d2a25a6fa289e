"""A receiver written from the README alone: the README's encrypted hook, with each algorithm it
offers, renders and signs a request with the dispatcher's own code, and the README's Python,
Node and Go snippets, run as written there, verify its signature and decrypt its body (Node and
Go with the libraries tests/receivers pins, which `make receivers` installs)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from receiver_support import (
    NODE_PRELUDE,
    PINS,
    Outcome,
    build_go,
    node_command,
    require_receivers,
    run,
    write_request,
)

from dispatcher.hooks.loader import load_hooks_text
from dispatcher.model.event import Event
from dispatcher.model.outcome import idempotency_key
from dispatcher.model.request import Request
from dispatcher.pipeline.request import build_request
from dispatcher.security.auth import Credentials, build_auth
from dispatcher.security.encryption import ALGORITHMS, JWE_KEY_BYTES, KEY_BYTES, b64u, generate_key

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
PLAINTEXT = b'{"order_id":"A-17","total":12.5}'
KEY_ID = "k-2026-11"  # the README's hook's key_id
JWES = tuple(JWE_KEY_BYTES)
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


def sent_by_the_readmes_hook(
    algorithm: str, key: str, monkeypatch: pytest.MonkeyPatch, *, key_id: bool = True
) -> Request:
    """The request of the README's encrypted hook, set to `algorithm`, for EVENT, signed;
    without `key_id`, the hook's key has none."""
    text = snippet("## Receiving encrypted payloads", "yaml")
    text, found = re.subn(r"algorithm: A256GCM\b", f"algorithm: {algorithm}", text)
    assert found == 1
    if not key_id:
        text, found = re.subn(r"\n *key_id: .*", "", text)
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
    assert received(algorithm, key, request.content) == PLAINTEXT


def signed_snippet(language: str) -> str:
    """The README's signature check in `language`."""
    return snippet("## Receiving signed webhooks", language)


def node_receiver(algorithm: str) -> str:
    """An ES module of the README's Node snippets, the signature check and then the decryption
    for `algorithm`, printing as JSON what a receiver learns. The README writes the secret as
    the literal `"whsec_..."`, which a receiver replaces with its own."""
    verify = signed_snippet("js")
    assert verify.count('"whsec_..."') == 1
    verify = verify.replace('"whsec_..."', "process.env.WEBHOOK_SECRET")
    decrypt = snippet(RECIPES[algorithm], "js")
    if algorithm == "C20P":
        shown = "{ text: openC20P(process.env.DUGAA_KEY, body).toString() }"
    else:
        shown = "{ text, kid: protectedHeader.kid, cty: protectedHeader.cty }"
    return f"{NODE_PRELUDE}\n{verify}\n{decrypt}\nprocess.stdout.write(JSON.stringify({shown}));\n"


def go_decrypt(algorithm: str) -> str:
    """The README's Go decryption with its algorithm line set to `algorithm`, as it says."""
    constant = "jose." + algorithm.replace("-", "_")
    text, found = re.subn(r"jose\.A256GCM\b", constant, snippet(RECIPES[algorithm], "go"))
    assert found == 1
    return text


def receiver(where: Path, language: str, algorithm: str) -> list[str]:
    """The command running the README's `language` receiver for `algorithm`, made in `where`."""
    require_receivers()
    if language == "node":
        return node_command(where, node_receiver(algorithm))
    built = build_go(
        where, {"verify.go": signed_snippet("go"), "decrypt.go": go_decrypt(algorithm)}
    )
    assert built.returncode == 0, built.stderr
    return [str(where / "receiver")]


def deliver(where: Path, command: list[str], request: Request, key: str) -> Outcome:
    """What the receiver `command`, holding the README hook's secret and `key`, makes of
    `request`."""
    arguments = write_request(where, request.content, dict(request.headers))
    return run([*command, *arguments], {"WEBHOOK_SECRET": SECRET, "DUGAA_KEY": key}, where)


def keys_in_each_form(algorithm: str) -> list[str]:
    """One key for `algorithm` written both ways the README allows, without and with its
    trailing `=`; it holds `-` and `_`, which a plain base64 decoder would refuse."""
    text = b64u(b"\xfb\xff\xbf" + os.urandom(KEY_BYTES[algorithm] - 3))
    assert "-" in text
    assert "_" in text
    return [text, text + "=" * (-len(text) % 4)]


def changed_in_transit(request: Request) -> Request:
    """`request` with the last byte of its body changed, as an attacker or a faulty proxy would."""
    last = b"B" if request.content.endswith(b"A") else b"A"
    return Request(request.method, request.url, request.headers, request.content[:-1] + last)


RECEIVERS = [("node", enc) for enc in (*JWES, "C20P")] + [("go", enc) for enc in JWES]


@pytest.mark.parametrize(("language", "algorithm"), RECEIVERS)
def test_the_readmes_node_and_go_receivers_verify_and_decrypt_what_its_hook_sends(
    language: str, algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = receiver(tmp_path, language, algorithm)
    for key in keys_in_each_form(algorithm):
        request = sent_by_the_readmes_hook(algorithm, key, monkeypatch)
        got = deliver(tmp_path, command, request, key)
        assert got.returncode == 0, got.stderr
        if language == "go":
            assert got.stdout == PLAINTEXT
            continue
        shown = json.loads(got.stdout)
        assert shown.pop("text").encode() == PLAINTEXT
        if algorithm != "C20P":  # the snippet's comment: kid says which key, cty what the text is
            assert shown == {"kid": KEY_ID, "cty": "application/json"}


def test_the_readmes_c20p_receivers_open_an_envelope_without_a_key_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key("C20P")
    request = sent_by_the_readmes_hook("C20P", key, monkeypatch, key_id=False)
    assert json.loads(request.content)["kid"] is None
    assert received("C20P", key, request.content) == PLAINTEXT
    got = deliver(tmp_path, receiver(tmp_path, "node", "C20P"), request, key)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["text"].encode() == PLAINTEXT


@pytest.mark.parametrize(("language", "algorithm"), [("node", "A256GCM"), ("go", "A128CBC-HS256")])
def test_the_readmes_node_and_go_receivers_refuse_a_changed_body_at_the_signature(
    language: str, algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(algorithm)
    request = sent_by_the_readmes_hook(algorithm, key, monkeypatch)
    changed = changed_in_transit(request)
    got = deliver(tmp_path, receiver(tmp_path, language, algorithm), changed, key)
    assert got.returncode != 0
    assert "no matching signature" in got.stderr.lower()


@pytest.mark.parametrize(("language", "algorithm"), [("node", "C20P"), ("go", "A256GCM")])
def test_the_readmes_node_and_go_receivers_refuse_a_body_under_another_key(
    language: str, algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = sent_by_the_readmes_hook(algorithm, generate_key(algorithm), monkeypatch)
    got = deliver(
        tmp_path, receiver(tmp_path, language, algorithm), request, generate_key(algorithm)
    )
    assert got.returncode != 0
    assert "signature" not in got.stderr.lower()  # the signature held: decryption refused it
    assert got.stdout == b""


def test_the_readmes_go_receiver_refuses_a_body_of_another_algorithm_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The algorithm line is the hook's: a body under another one is refused with an error the
    receiver handles (the snippet once left that error unchecked, and Decrypt ran on nil)."""
    key = generate_key("A128GCM")
    request = sent_by_the_readmes_hook("A128GCM", key, monkeypatch)
    got = deliver(tmp_path, receiver(tmp_path, "go", "A256GCM"), request, key)
    assert got.returncode == 1
    assert got.stderr.startswith("decrypt: ")
    assert "panic" not in got.stderr


def test_the_readme_names_the_library_versions_its_receivers_are_tested_with() -> None:
    npm = json.loads((PINS / "package.json").read_text())["dependencies"]
    go = dict(re.findall(r"^\t(\S+) (v\S+)$", (PINS / "go.mod").read_text(), re.MULTILINE))
    assert len(npm) == len(go) == 2
    text = " ".join(README.split())  # its lines wrap anywhere
    for name, version in npm.items():
        assert f"npm `{name}` {version}" in text
    for module, version in go.items():
        assert f"`{module}` {version}" in text
