"""Standard Webhooks signatures: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`. Pure.

A secret is written `whsec_<base64>` (the prefix is optional); the bytes it decodes to are the
HMAC key. Several secrets (a rotation) give several space-separated `v1,<base64>` signatures, and
a verifier accepts the message when any one of them matches a secret it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from dispatcher.config.secrets import Secret

PREFIX = "whsec_"
VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds either side of the verifier's clock
MIN_KEY_BYTES = 16


def secret_key(secret: Secret) -> bytes:
    """The HMAC key a `whsec_<base64>` secret stands for; `ValueError` (no value) when malformed."""
    text = secret.reveal().strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not base64 (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def check_secret(secret: Secret) -> str | None:
    """Why `secret` cannot sign (for hook validation), or None; never holds the value."""
    try:
        key = secret_key(secret)
    except ValueError as exc:
        return str(exc)
    if len(key) < MIN_KEY_BYTES:
        return f"webhook secret decodes to {len(key)} bytes; use at least {MIN_KEY_BYTES}"
    return None


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """The exact bytes that are signed: `{id}.{timestamp}.{body}`."""
    return f"{msg_id}.{timestamp}.".encode() + body


def _digest(key: bytes, content: bytes) -> bytes:
    return hmac.digest(key, content, hashlib.sha256)


def sign(secrets: Sequence[Secret], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    return sign_with_keys([secret_key(s) for s in secrets], msg_id, timestamp, body)


def sign_with_keys(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """`sign` with the keys decoded already (a signer decodes its secrets once)."""
    content = signed_content(msg_id, timestamp, body)
    if len(keys) == 1:  # no rotation under way: the usual case, without the join
        return f"{VERSION},{base64.b64encode(_digest(keys[0], content)).decode()}"
    return " ".join(f"{VERSION},{base64.b64encode(_digest(k, content)).decode()}" for k in keys)


def verify(
    secrets: Sequence[Secret],
    msg_id: str,
    timestamp: int,
    body: bytes,
    signature_header: str,
    *,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether any `v1` signature in the header matches any secret (and, given `now`, is fresh)."""
    if now is not None and abs(now - timestamp) > tolerance:
        return False
    content = signed_content(msg_id, timestamp, body)
    expected = [_digest(secret_key(s), content) for s in secrets]
    for item in signature_header.split():
        version, _, encoded = item.partition(",")
        if version != VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(candidate, digest) for digest in expected):
            return True
    return False
