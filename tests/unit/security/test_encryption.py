"""Payload encryption: JWE checked by jwcrypto, C20P and Fernet by the receiver recipes we publish."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwe, jwk

from dispatcher.config.secrets import Secret
from dispatcher.errors import ConfigError, DecryptionError
from dispatcher.model.body import Body
from dispatcher.model.encryption import EncryptionKey, EncryptionSpec
from dispatcher.security.decryption import decrypt_payload
from dispatcher.security.encryption import (
    ALGORITHMS,
    JWE_KEY_BYTES,
    KEY_BYTES,
    check_key,
    encrypt_body,
    generate_key,
)

JWE_ENCS = tuple(JWE_KEY_BYTES)
BODY = Body(b'{"to":"+254700000001","text":"Order A-17 shipped"}', "application/json")
KEYS = {name: generate_key(name) for name in ALGORITHMS}


def _spec(algorithm: str, key: str | None = None, kid: str | None = "k-2026-11") -> EncryptionSpec:
    return EncryptionSpec(algorithm, (EncryptionKey(kid, Secret(key or KEYS[algorithm])),))


def _jwcrypto_decrypt(token: bytes, key: str) -> bytes:
    obj = jwe.JWE()
    obj.deserialize(token.decode(), key=jwk.JWK(kty="oct", k=key))
    payload: bytes = obj.payload
    return payload


# The receiver recipes of the README's "Receiving encrypted payloads", as written there.
def _b64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _open_c20p(key: str, body: bytes) -> bytes:
    env = json.loads(body)
    if env["v"] != 1 or env["alg"] != "C20P":
        raise ValueError("not a C20P v1 envelope")
    aad = f"1.C20P.{env['kid'] or ''}".encode()
    return ChaCha20Poly1305(_b64u(key)).decrypt(_b64u(env["nonce"]), _b64u(env["ct"]), aad)


def _open_fernet(key: str, body: bytes) -> bytes:
    return Fernet(key).decrypt(body)


@pytest.mark.parametrize("enc", JWE_ENCS)
def test_every_jwe_enc_decrypts_with_jwcrypto(enc: str) -> None:
    sent = encrypt_body(_spec(enc), BODY)
    assert sent.media_type == "application/jose"
    assert _jwcrypto_decrypt(sent.content, KEYS[enc]) == BODY.content
    header = json.loads(_b64u(sent.content.split(b".")[0].decode()))
    assert header == {"alg": "dir", "enc": enc, "kid": "k-2026-11", "cty": "application/json"}


def _tamper(segment: str) -> str:
    if not segment:
        return "AAAA"
    i = len(segment) // 2
    return segment[:i] + ("B" if segment[i] == "A" else "A") + segment[i + 1 :]


@pytest.mark.parametrize("segment", range(5), ids=["header", "key", "iv", "ciphertext", "tag"])
@pytest.mark.parametrize("enc", JWE_ENCS)
def test_tampering_with_any_jwe_segment_fails(enc: str, segment: int) -> None:
    parts = encrypt_body(_spec(enc), BODY).content.decode().split(".")
    parts[segment] = _tamper(parts[segment])
    forged = ".".join(parts).encode()
    with pytest.raises(jwe.InvalidJWEData):
        _jwcrypto_decrypt(forged, KEYS[enc])
    with pytest.raises(DecryptionError):
        decrypt_payload(enc, [KEYS[enc]], forged)


@pytest.mark.parametrize("enc", JWE_ENCS)
def test_a_rewritten_jwe_header_fails_authentication(enc: str) -> None:
    parts = encrypt_body(_spec(enc), BODY).content.decode().split(".")
    header = json.loads(_b64u(parts[0]))
    header["kid"] = "k-other"
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    forged = ".".join(parts).encode()
    with pytest.raises(jwe.InvalidJWEData):
        _jwcrypto_decrypt(forged, KEYS[enc])
    with pytest.raises(DecryptionError):
        decrypt_payload(enc, [KEYS[enc]], forged)


def test_c20p_envelope_opens_with_the_documented_recipe() -> None:
    sent = encrypt_body(_spec("C20P"), BODY)
    assert sent.media_type == "application/json"
    envelope = json.loads(sent.content)
    assert list(envelope) == ["v", "alg", "kid", "nonce", "ct"]
    assert envelope["kid"] == "k-2026-11"
    assert _open_c20p(KEYS["C20P"], sent.content) == BODY.content
    assert _open_c20p(KEYS["C20P"], encrypt_body(_spec("C20P", kid=None), BODY).content)


@pytest.mark.parametrize(("field", "value"), [("kid", "k-other"), ("ct", None), ("nonce", None)])
def test_c20p_binds_kid_and_rejects_changes(field: str, value: str | None) -> None:
    envelope = json.loads(encrypt_body(_spec("C20P"), BODY).content)
    envelope[field] = value or _tamper(envelope[field])
    forged = json.dumps(envelope).encode()
    with pytest.raises(InvalidTag):
        _open_c20p(KEYS["C20P"], forged)
    with pytest.raises(DecryptionError):
        decrypt_payload("C20P", [KEYS["C20P"]], forged)


def test_fernet_token_opens_with_the_documented_recipe() -> None:
    sent = encrypt_body(_spec("fernet"), BODY)
    assert sent.media_type == "text/plain"
    assert _open_fernet(KEYS["fernet"], sent.content) == BODY.content


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_message_gets_a_fresh_nonce(algorithm: str) -> None:
    first = encrypt_body(_spec(algorithm), BODY).content
    second = encrypt_body(_spec(algorithm), BODY).content
    assert first != second


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=300), algorithm=st.sampled_from(ALGORITHMS))
def test_round_trip_through_decrypt_payload(plaintext: bytes, algorithm: str) -> None:
    sent = encrypt_body(_spec(algorithm), Body(plaintext, "application/octet-stream"))
    assert decrypt_payload(algorithm, [Secret(KEYS[algorithm])], sent.content) == plaintext


def test_rotation_encrypts_with_the_active_key_and_decrypt_tries_each() -> None:
    old, new = generate_key("A256GCM"), generate_key("A256GCM")
    spec = EncryptionSpec(
        "A256GCM",
        (EncryptionKey("old", Secret(old), "decrypt-only"), EncryptionKey("new", Secret(new))),
    )
    token = encrypt_body(spec, BODY).content
    assert json.loads(_b64u(token.split(b".")[0].decode()))["kid"] == "new"
    assert decrypt_payload("A256GCM", [Secret(old), Secret(new)], token) == BODY.content
    with pytest.raises(DecryptionError):
        decrypt_payload("A256GCM", [old], token)


def test_a_payload_of_another_algorithm_does_not_decrypt_and_says_so() -> None:
    token = encrypt_body(_spec("A256GCM"), BODY).content
    with pytest.raises(DecryptionError, match="the JWE's enc is 'A256GCM', not 'A256CBC-HS512'"):
        decrypt_payload("A256CBC-HS512", [KEYS["A256CBC-HS512"]], token)
    with pytest.raises(DecryptionError, match="not a C20P v1 envelope: not JSON"):
        decrypt_payload("C20P", [KEYS["C20P"]], b"not json")
    with pytest.raises(DecryptionError, match="not a Fernet token"):
        decrypt_payload("fernet", [KEYS["fernet"]], token)


def test_a_key_that_does_not_fit_is_named_rather_than_tried() -> None:
    token = encrypt_body(_spec("A256GCM"), BODY).content
    short = KEYS["A128GCM"]
    with pytest.raises(ValueError, match="A256GCM needs a 32-byte key") as refused:
        decrypt_payload("A256GCM", [KEYS["A256GCM"], short], token)
    assert short not in str(refused.value)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_a_payload_cut_short_is_told_from_a_wrong_key(algorithm: str, keep: float) -> None:
    sent = encrypt_body(_spec(algorithm), BODY).content
    with pytest.raises(DecryptionError, match=r"^not .*\(cut short\?\)$"):
        decrypt_payload(algorithm, [KEYS[algorithm]], sent[: int(len(sent) * keep)])
    with pytest.raises(DecryptionError, match=r"^no given key decrypts this payload"):
        decrypt_payload(algorithm, [generate_key(algorithm)], sent)


@pytest.mark.parametrize("algorithm", ["C20P", "A256GCM"])
def test_deeply_nested_json_is_malformed_input_not_a_crash(algorithm: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    payload = (
        nested
        if algorithm == "C20P"
        else b".".join([base64.urlsafe_b64encode(nested), b"", b"a", b"b", b"c"])
    )
    with pytest.raises(DecryptionError, match=r"^not "):
        decrypt_payload(algorithm, [KEYS[algorithm]], payload)


def test_a_spec_without_an_active_key_is_a_config_error() -> None:
    spec = EncryptionSpec(
        "A128GCM", (EncryptionKey("old", Secret(KEYS["A128GCM"]), "decrypt-only"),)
    )
    with pytest.raises(ConfigError, match="no active key"):
        encrypt_body(spec, BODY)


def test_spec_from_hook_configuration_encrypts() -> None:
    spec = EncryptionSpec.from_dict(
        {"algorithm": "a128gcm", "key": KEYS["A128GCM"], "key_id": "k1"}
    )
    assert _jwcrypto_decrypt(encrypt_body(spec, BODY).content, KEYS["A128GCM"]) == BODY.content


@pytest.mark.parametrize(
    ("algorithm", "key", "expected"),
    [
        ("A256GCM", base64.urlsafe_b64encode(b"k" * 16).decode(), "32-byte key"),
        ("A128CBC-HS256", base64.urlsafe_b64encode(b"k" * 16).decode(), "this key decodes to 16"),
        ("A256CBC-HS512", "secret*with*stars", "not base64url"),
        ("C20P", base64.urlsafe_b64encode(b"k" * 31).decode(), "32-byte key"),
        ("fernet", "plain words", "Fernet key"),
        ("AES-ECB", "anything", "unknown encryption algorithm"),
    ],
)
def test_check_key_explains_without_revealing_the_key(
    algorithm: str, key: str, expected: str
) -> None:
    message = check_key(algorithm, Secret(key))
    assert message is not None
    assert expected in message
    assert key not in message


def test_a_fernet_key_without_its_final_padding_is_refused_as_fernet_refuses_it() -> None:
    key = generate_key("fernet").rstrip("=")
    with pytest.raises(ValueError, match="Fernet key must be"):
        Fernet(key)  # the README's receiver, holding the key as configured
    message = check_key("fernet", Secret(key))
    assert message is not None
    assert "the final = is missing" in message
    assert key not in message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_key_in_plain_base64_is_refused_as_not_base64url(algorithm: str) -> None:
    # strict base64url decoders (Go's base64.RawURLEncoding, as the README's Go receiver
    # uses) refuse + and /, so a receiver could not use the key as configured
    key = base64.b64encode((b"\xfb\xff\xbf" * 30)[: KEY_BYTES[algorithm]]).decode()
    assert "+" in key
    assert "/" in key
    message = check_key(algorithm, Secret(key))
    assert message is not None
    assert "holds + or /" in message
    assert key not in message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_generated_keys_pass_the_check(algorithm: str) -> None:
    assert check_key(algorithm, Secret(generate_key(algorithm))) is None


def test_the_hooks_schema_offers_exactly_the_algorithms_encryption_implements() -> None:
    from dispatcher.hooks.schema import hooks_schema
    from dispatcher.security.encryption import ALGORITHMS

    definition = hooks_schema()["$defs"]["encryption"]["properties"]["algorithm"]
    assert sorted(definition["enum"]) == sorted(ALGORITHMS)
