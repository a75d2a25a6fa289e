"""Standard Webhooks signatures, checked against the reference verifier from PyPI."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dispatcher.config.secrets import Secret
from dispatcher.security.signing import Signer, check_secret, secret_key, sign, verify

OLD = Secret("whsec_" + base64.b64encode(b"old-secret-0123456789abcdef").decode())
NEW = Secret("whsec_" + base64.b64encode(b"new-secret-0123456789abcdef").decode())
OTHER = Secret("whsec_" + base64.b64encode(b"unrelated-secret-0123456789").decode())
BODY = b'{"order_id":"A-17","total":"12.50","note":"caf\xc3\xa9"}'


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_matches_the_specification_test_vector() -> None:
    # The example in the Standard Webhooks specification.
    secret = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_verifier_accepts_our_signature() -> None:
    now = int(time.time())
    header = sign([NEW], "msg_1", now, BODY)
    assert Webhook(NEW.reveal()).verify(BODY, _headers("msg_1", now, header)) is not None


def test_during_rotation_receivers_holding_either_secret_accept() -> None:
    now = int(time.time())
    header = sign([OLD, NEW], "msg_2", now, BODY)
    assert len(header.split(" ")) == 2
    for secret in (OLD, NEW):
        Webhook(secret.reveal()).verify(BODY, _headers("msg_2", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER.reveal()).verify(BODY, _headers("msg_2", now, header))


@pytest.mark.parametrize(
    ("msg_id", "delta", "body"),
    [("msg_other", 0, BODY), ("msg_3", 1, BODY), ("msg_3", 0, BODY + b" ")],
    ids=["id", "timestamp", "body"],
)
def test_reference_verifier_rejects_any_changed_part(msg_id: str, delta: int, body: bytes) -> None:
    now = int(time.time())
    header = sign([NEW], "msg_3", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW.reveal()).verify(body, _headers(msg_id, now + delta, header))


def test_verify_accepts_any_matching_secret_and_rejects_changes() -> None:
    header = sign([OLD, NEW], "msg_4", 1_700_000_000, BODY)
    assert verify([NEW], "msg_4", 1_700_000_000, BODY, header)
    assert verify([OTHER, OLD], "msg_4", 1_700_000_000, BODY, header)
    assert not verify([OTHER], "msg_4", 1_700_000_000, BODY, header)
    assert not verify([NEW], "msg_4", 1_700_000_000, BODY + b"x", header)
    assert not verify([NEW], "msg_4", 1_700_000_000, BODY, header.replace("v1,", "v2,"))


def test_verify_rejects_a_stale_timestamp_given_the_clock() -> None:
    header = sign([NEW], "msg_5", 1_700_000_000, BODY)
    assert verify([NEW], "msg_5", 1_700_000_000, BODY, header, now=1_700_000_299)
    assert not verify([NEW], "msg_5", 1_700_000_000, BODY, header, now=1_700_000_301)


def test_secret_prefix_is_optional() -> None:
    bare = Secret(NEW.reveal().removeprefix("whsec_"))
    assert secret_key(bare) == secret_key(NEW) == b"new-secret-0123456789abcdef"


def test_malformed_secret_is_explained_without_its_value() -> None:
    bad = Secret("whsec_not*base64!")
    message = check_secret(bad)
    assert message is not None
    assert "not*base64" not in message
    assert check_secret(Secret("whsec_" + base64.b64encode(b"short").decode())) is not None
    assert check_secret(NEW) is None


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one"):
        sign([], "msg_6", 0, BODY)


@pytest.mark.parametrize("size", [8, 2046, 2047, 2048, 4094, 4095, 10_000])
def test_bodies_fed_in_pieces_sign_as_a_whole_body_does(size: int) -> None:
    """A body is hashed in pieces under hashlib's GIL-releasing size; the signature is the
    reference verifier's, either side of every piece boundary."""
    now = int(time.time())
    body = b'{"p":"' + bytes(97 + i % 26 for i in range(size - 8)) + b'"}'  # a JSON document
    assert len(body) == size
    header = sign([OLD, NEW], "msg_7", now, body)
    for secret in (OLD, NEW):
        Webhook(secret.reveal()).verify(body, _headers("msg_7", now, header))


def test_a_signer_signs_each_message_afresh() -> None:
    """The keyed HMAC objects are copied per message, never fed twice."""
    signer = Signer([secret_key(NEW)])
    first = signer.sign("msg_8", 1, BODY)
    assert signer.sign("msg_9", 1, BODY) != first
    assert signer.sign("msg_8", 1, BODY) == first == sign([NEW], "msg_8", 1, BODY)


def _readme_receiver() -> str:
    """The Python snippet of the README's "Receiving signed webhooks", as written there."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Receiving signed webhooks", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    "body",
    [
        b'{"order_id":"A-17"}',
        b"order_id,total\r\nA-17,12.50\r\n",
        b'<?xml version="1.0" encoding="UTF-8"?><message><order_id>A-17</order_id></message>',
        b"order_id=A-17&total=12.50",
        b"gAAAAABnZ3V0c2lkZS1vZi1hLWZlcm5ldC10b2tlbg==",  # an encrypted body is no JSON either
    ],
    ids=["json", "csv", "xml", "form", "fernet"],
)
def test_the_readme_receiver_accepts_every_correctly_signed_body(body: bytes) -> None:
    now = int(time.time())
    headers = _headers("msg_5", now, sign([NEW], "msg_5", now, body))
    snippet = _readme_receiver().replace('"whsec_..."', repr(NEW.reveal()))
    # the README's own text, run as a receiver would run it: it raises if it refuses the body
    exec(snippet, {"body": body, "headers": headers})  # noqa: S102
    with pytest.raises(WebhookVerificationError):
        exec(snippet, {"body": body + b" ", "headers": headers})  # noqa: S102
