"""Payload encryption on top of TLS, in forms receivers decrypt with standard libraries.

- JWE compact serialization (RFC 7516), `alg: dir`, `enc` one of A128GCM, A256GCM,
  A128CBC-HS256, A256CBC-HS512 (RFC 7518 5.2-5.3), `kid` and `cty` in the protected header.
  Media type `application/jose`. Built with `cryptography` alone.
- C20P: ChaCha20-Poly1305 (RFC 8439) in a JSON envelope
  `{"v":1,"alg":"C20P","kid":..,"nonce":..,"ct":..}` (nonce and ciphertext-with-tag base64url,
  associated data the ASCII string `1.C20P.<kid>`). Media type `application/json`.
- fernet: a Fernet token (its own text form). Media type `text/plain`.

Keys are base64url (padding optional); Fernet keys are the standard Fernet key form. A fresh
random nonce or IV is drawn for every message. decryption.py opens these forms, as a receiver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from dispatcher.config.secrets import Secret
from dispatcher.errors import ConfigError
from dispatcher.model.body import Body
from dispatcher.model.encryption import EncryptionSpec

JWE_KEY_BYTES = {"A128GCM": 16, "A256GCM": 32, "A128CBC-HS256": 32, "A256CBC-HS512": 64}
KEY_BYTES = {**JWE_KEY_BYTES, "C20P": 32, "fernet": 32}
ALGORITHMS = tuple(KEY_BYTES)
JOSE_MEDIA_TYPE = "application/jose"
C20P_MEDIA_TYPE = "application/json"
FERNET_MEDIA_TYPE = "text/plain"


def canonical(algorithm: str) -> str:
    """The algorithm's name as written in this module, matched case-insensitively."""
    for name in ALGORITHMS:
        if name.lower() == algorithm.strip().lower():
            return name
    raise ConfigError(f"unknown encryption algorithm {algorithm!r}; one of {', '.join(ALGORITHMS)}")


def b64u(data: bytes) -> str:
    """Base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str | bytes) -> bytes:
    """Bytes from base64url with or without padding; `ValueError` on any other character."""
    raw = text.strip() if isinstance(text, str) else text.decode("ascii").strip()
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


FERNET_KEY_FORM = "a Fernet key (url-safe base64 of 32 bytes: 44 characters, the last one =)"


def decode_key(algorithm: str, key: Secret | str) -> bytes:
    """The raw key bytes; `ValueError` with a message that never holds the key.

    Only the forms receivers' libraries read are taken: `+` or `/` (plain base64) would be
    refused by a strict base64url decoder such as Go's, and a Fernet key without its final
    `=` by every Fernet library, though the bytes are the same."""
    text = (key.reveal() if isinstance(key, Secret) else key).strip()
    name = canonical(algorithm)
    form = FERNET_KEY_FORM if name == "fernet" else "base64url"
    if "+" in text or "/" in text:
        raise ValueError(f"{name} key is not {form}: it holds + or / (write - and _ instead)")
    try:
        raw = b64u_decode(text)
    except ValueError:
        raise ValueError(f"{name} key is not {form}") from None
    if len(raw) != KEY_BYTES[name]:
        want = KEY_BYTES[name]
        raise ValueError(
            f"{name} needs a {want}-byte key ({len(b64u(bytes(want)))} base64url characters); "
            f"this key decodes to {len(raw)} bytes"
        )
    if name == "fernet" and not text.endswith("="):
        raise ValueError(f"fernet key is not {form}: the final = is missing")
    return raw


def check_key(algorithm: str, key: Secret) -> str | None:
    """Why `key` cannot serve `algorithm` (for hook validation), or None."""
    try:
        decode_key(algorithm, key)
    except (ValueError, ConfigError) as exc:
        return str(exc)
    return None


def generate_key(algorithm: str) -> str:
    """A fresh random key for `algorithm`, in the form hooks are configured with."""
    name = canonical(algorithm)
    if name == "fernet":
        return Fernet.generate_key().decode("ascii")
    return b64u(os.urandom(KEY_BYTES[name]))


def encrypt_body(spec: EncryptionSpec, body: Body) -> Body:
    """`body` encrypted with the spec's active key; the result names its own media type."""
    name = canonical(spec.algorithm)
    active = next((k for k in spec.keys if k.state == "active"), None)
    if active is None:
        raise ConfigError("encryption: the key set has no active key")
    key = decode_key(name, active.key)
    if name == "fernet":
        return Body(Fernet(base64.urlsafe_b64encode(key)).encrypt(body.content), FERNET_MEDIA_TYPE)
    if name == "C20P":
        return Body(c20p_encrypt(key, active.id, body.content), C20P_MEDIA_TYPE)
    token = jwe_encrypt(name, key, body.content, kid=active.id, cty=body.media_type)
    return Body(token, JOSE_MEDIA_TYPE)


def jwe_encrypt(
    enc: str, key: bytes, plaintext: bytes, *, kid: str | None, cty: str | None
) -> bytes:
    """A JWE compact serialization with `alg: dir` and the given content encryption."""
    header: dict[str, str] = {"alg": "dir", "enc": enc}
    if kid is not None:
        header["kid"] = kid
    if cty is not None:
        header["cty"] = cty
    protected = b64u(json.dumps(header, separators=(",", ":")).encode())
    aad = protected.encode("ascii")
    if enc.endswith("GCM"):
        iv = os.urandom(12)
        sealed = AESGCM(key).encrypt(iv, plaintext, aad)
        ciphertext, tag = sealed[:-16], sealed[-16:]
    else:
        iv = os.urandom(16)
        ciphertext, tag = _cbc_hs_encrypt(key, iv, plaintext, aad)
    return ".".join((protected, "", b64u(iv), b64u(ciphertext), b64u(tag))).encode("ascii")


def cbc_hs_tag(mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    digest = hashlib.sha256 if len(mac_key) == 16 else hashlib.sha512
    al = (len(aad) * 8).to_bytes(8, "big")
    return hmac.new(mac_key, aad + iv + ciphertext + al, digest).digest()[: len(mac_key)]


def _cbc_hs_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES_CBC_HMAC_SHA2 (RFC 7518 5.2.2.1): MAC key first half, encryption key second half."""
    half = len(key) // 2
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key[half:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return ciphertext, cbc_hs_tag(key[:half], aad, iv, ciphertext)


def c20p_aad(kid: str | None) -> bytes:
    """The associated data binding an envelope's version, algorithm and key id."""
    return f"1.C20P.{kid or ''}".encode()


def c20p_encrypt(key: bytes, kid: str | None, plaintext: bytes) -> bytes:
    """The C20P JSON envelope of `plaintext`."""
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, plaintext, c20p_aad(kid))
    envelope = {"v": 1, "alg": "C20P", "kid": kid, "nonce": b64u(nonce), "ct": b64u(sealed)}
    return json.dumps(envelope, separators=(",", ":")).encode()
