"""Opening what encryption.py seals, as a receiver would (`dispatcher decrypt`).

A payload's form is checked before any key is tried, so that a body cut short, or of another
algorithm, is told apart from a wrong key; keys are decoded up front, so that one of the wrong
length is named rather than skipped.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from dispatcher.config.secrets import Secret
from dispatcher.errors import DecryptionError
from dispatcher.security.encryption import (
    b64u_decode,
    c20p_aad,
    canonical,
    cbc_hs_tag,
    decode_key,
)


def decrypt_payload(algorithm: str, keys: Sequence[Secret | str], payload: bytes) -> bytes:
    """The plaintext of `payload`, trying each key in turn.

    `ValueError` when a key does not fit the algorithm. `DecryptionError` when the payload is
    not of the algorithm's form, saying why (checked before any key, so that input cut short
    or of another algorithm is not taken for a wrong key), or when no key opens it."""
    name = canonical(algorithm)
    raws = [decode_key(name, key) for key in keys]
    try:
        opener = _opener(name, payload.strip())
    except ValueError as exc:
        raise DecryptionError(str(exc)) from None
    for raw in raws:
        try:
            return opener(raw)
        except ValueError:
            continue
    raise DecryptionError(
        f"no given key decrypts this payload as {name} (a wrong key, or the payload was changed)"
    )


def _opener(name: str, payload: bytes) -> Callable[[bytes], bytes]:
    """What opens `payload` with a key, once its form is checked; `ValueError` saying why not."""
    if name == "fernet":
        token = _fernet_token(payload)
        return lambda key: _fernet_open(key, token)
    if name == "C20P":
        kid, nonce, sealed = _c20p_parts(payload)
        return lambda key: _c20p_open(key, kid, nonce, sealed)
    parts = _jwe_parts(name, payload)
    return lambda key: _jwe_open(name, key, parts)


def _fernet_token(payload: bytes) -> bytes:
    """`payload` when it has the form of a Fernet token: version 0x80, timestamp, IV,
    whole AES blocks and an HMAC-SHA256 (Fernet spec), in url-safe base64."""
    try:
        data = base64.b64decode(payload, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a Fernet token: not url-safe base64 (cut short?)") from None
    if len(data) < 73 or (len(data) - 57) % 16:
        raise ValueError(f"not a Fernet token: {len(data)} bytes is no token's length (cut short?)")
    if data[0] != 0x80:
        raise ValueError("not a Fernet token: its version byte is not 0x80")
    return payload


def _fernet_open(key: bytes, token: bytes) -> bytes:
    try:
        return Fernet(base64.urlsafe_b64encode(key)).decrypt(token)
    except InvalidToken:
        raise ValueError("Fernet authentication failed") from None


JweParts = tuple[bytes, bytes, bytes, bytes]  # protected header (the AAD), IV, ciphertext, tag
IV_BYTES = {"A128GCM": 12, "A256GCM": 12, "A128CBC-HS256": 16, "A256CBC-HS512": 16}
TAG_BYTES = {"A128GCM": 16, "A256GCM": 16, "A128CBC-HS256": 16, "A256CBC-HS512": 32}


def jwe_decrypt(enc: str, key: bytes, token: bytes) -> bytes:
    """The plaintext of a compact JWE made with `alg: dir` and `enc`; `ValueError` otherwise."""
    return _jwe_open(enc, key, _jwe_parts(enc, token))


def _jwe_parts(enc: str, token: bytes) -> JweParts:
    """The parts of a compact JWE with `alg: dir` and `enc`; `ValueError` saying what is wrong."""
    parts = token.strip().split(b".")
    if len(parts) != 5:
        raise ValueError(
            f"not a compact JWE: not 5 dot-separated parts but {len(parts)} (cut short?)"
        )
    if parts[1]:
        raise ValueError("not a JWE with alg dir: its encrypted key is not empty")
    try:
        header: Any = json.loads(b64u_decode(parts[0]))
        iv, ciphertext, tag = (b64u_decode(p) for p in parts[2:])
    except (ValueError, RecursionError):
        raise ValueError("not a compact JWE: a part is not base64url JSON (cut short?)") from None
    if not isinstance(header, dict) or header.get("alg") != "dir" or "crit" in header:
        raise ValueError("not a JWE with alg dir (and no crit) in its protected header")
    if header.get("enc") != enc:
        raise ValueError(f"the JWE's enc is {header.get('enc')!r}, not {enc!r}")
    if len(iv) != IV_BYTES[enc] or len(tag) != TAG_BYTES[enc]:
        raise ValueError(f"not a compact JWE: its IV or tag is not of {enc}'s length (cut short?)")
    return parts[0], iv, ciphertext, tag


def _jwe_open(enc: str, key: bytes, parts: JweParts) -> bytes:
    aad, iv, ciphertext, tag = parts
    if enc.endswith("GCM"):
        try:
            return AESGCM(key).decrypt(iv, ciphertext + tag, aad)
        except InvalidTag:
            raise ValueError("JWE authentication failed") from None
    return _cbc_hs_decrypt(key, iv, ciphertext, tag, aad)


def _cbc_hs_decrypt(key: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    half = len(key) // 2
    if len(iv) != 16 or not hmac.compare_digest(tag, cbc_hs_tag(key[:half], aad, iv, ciphertext)):
        raise ValueError("JWE authentication failed")
    decryptor = Cipher(algorithms.AES(key[half:]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def c20p_decrypt(key: bytes, payload: bytes) -> bytes:
    """The plaintext of a C20P envelope; `ValueError` when it is malformed or forged."""
    return _c20p_open(key, *_c20p_parts(payload))


def _c20p_parts(payload: bytes) -> tuple[str | None, bytes, bytes]:
    """The kid, nonce and sealed text of a C20P v1 envelope; `ValueError` saying what is wrong."""
    try:
        envelope: Any = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("not a C20P v1 envelope: not JSON (cut short?)") from None
    if not isinstance(envelope, dict) or envelope.get("v") != 1 or envelope.get("alg") != "C20P":
        raise ValueError('not a C20P v1 envelope: no "v":1 and "alg":"C20P"')
    kid, nonce, sealed = envelope.get("kid"), envelope.get("nonce"), envelope.get("ct")
    if not (kid is None or isinstance(kid, str)) or not isinstance(nonce, str):
        raise ValueError("not a C20P v1 envelope: kid must be a string or null, nonce a string")
    try:
        nonce_bytes, sealed_bytes = b64u_decode(nonce), b64u_decode(str(sealed))
    except ValueError:
        raise ValueError("not a C20P v1 envelope: nonce and ct must be base64url") from None
    if len(nonce_bytes) != 12 or len(sealed_bytes) < 16:
        raise ValueError("not a C20P v1 envelope: nonce or ct too short (cut short?)")
    return kid, nonce_bytes, sealed_bytes


def _c20p_open(key: bytes, kid: str | None, nonce: bytes, sealed: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, sealed, c20p_aad(kid))
    except InvalidTag:
        raise ValueError("C20P authentication failed") from None
