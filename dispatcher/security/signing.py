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


class Signer:
    """Signs with one or more keys (a rotation), each keyed once: an HMAC object per key is made
    here and copied per message.

    `hmac.digest(key, ...)` sets the key up again on every call, and gives up the GIL while it
    hashes even a few bytes: the consumer thread then took the GIL, and the delivery loop
    waited for it back until that thread's next pause (up to the 5 ms switch interval). An
    HMAC object keeps the GIL for updates under `GIL_FREE_FROM` bytes, so a body is fed in
    pieces below that size: a signature costs ~1 us of hashing and never a thread switch.
    """

    __slots__ = ("_keyed",)

    GIL_FREE_FROM = 2048  # CPython's hashlib releases the GIL for an update this long or longer

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("signing needs at least one secret")
        self._keyed = tuple(hmac.new(key, digestmod=hashlib.sha256) for key in keys)

    def digests(self, content: bytes) -> list[bytes]:
        """The HMAC-SHA256 of `content` under each key, in the keys' order."""
        return [self._digest(keyed, content) for keyed in self._keyed]

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` header value: one `v1,<base64>` per key, space-separated."""
        content = signed_content(msg_id, timestamp, body)
        if len(self._keyed) == 1:  # no rotation under way: the usual case, without the join
            return f"{VERSION},{base64.b64encode(self._digest(self._keyed[0], content)).decode()}"
        return " ".join(f"{VERSION},{base64.b64encode(d).decode()}" for d in self.digests(content))

    def _digest(self, keyed: hmac.HMAC, content: bytes) -> bytes:
        mac = keyed.copy()
        step = self.GIL_FREE_FROM - 1
        if len(content) <= step:
            mac.update(content)
        else:
            view = memoryview(content)
            for start in range(0, len(content), step):
                mac.update(view[start : start + step])
        return mac.digest()


def sign(secrets: Sequence[Secret], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated."""
    return Signer([secret_key(s) for s in secrets]).sign(msg_id, timestamp, body)


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
    if not secrets or (now is not None and abs(now - timestamp) > tolerance):
        return False
    expected = Signer([secret_key(s) for s in secrets]).digests(
        signed_content(msg_id, timestamp, body)
    )
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
