"""The response excerpt of an attempt record: text only, at most 1 KiB, never binary garbage."""

from __future__ import annotations

import pytest

from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.excerpt import EXCERPT_BYTES, excerpt
from dispatcher.pipeline.judge import judge


def test_a_short_text_body_is_its_own_excerpt() -> None:
    assert excerpt(b'{"status":"busy","retry":"later"}\n') == '{"status":"busy","retry":"later"}\n'


def test_an_empty_body_is_an_empty_excerpt() -> None:
    assert excerpt(b"") == ""


def test_a_body_over_one_kib_is_cut_at_one_kib() -> None:
    shown = excerpt(b"a" * 5000)
    assert shown == "a" * EXCERPT_BYTES


def test_a_character_cut_by_the_limit_is_left_out_not_garbled() -> None:
    body = b"a" * (EXCERPT_BYTES - 1) + "é".encode() + b"tail"  # é's 2 bytes straddle the cut

    shown = excerpt(body)

    assert shown == "a" * (EXCERPT_BYTES - 1)
    assert "\ufffd" not in (shown or "")


def test_utf8_text_keeps_its_characters() -> None:
    assert excerpt("Commande reçue — 注文 ✓".encode()) == "Commande reçue — 注文 ✓"


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)),  # binary
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",  # gzip
        b"Caf\xe9 ferm\xe9",  # Latin-1, invalid UTF-8
        b"\xff\xfe{\x00}\x00",  # UTF-16
        b"ok\x00\x00\x00",  # text with NULs
        "text\u0085with a C1 control".encode(),
    ],
)
def test_a_body_that_is_not_text_has_no_excerpt(body: bytes) -> None:
    assert excerpt(body) is None


def test_a_credential_echoed_after_an_authorization_scheme_is_masked() -> None:
    body = b'{"headers":{"Authorization":"Bearer eyJhbGciOi.xyz-123","X":"Basic dXNlcjpwYXNz"}}'

    shown = excerpt(body) or ""

    assert "eyJhbGciOi" not in shown
    assert "dXNlcjpwYXNz" not in shown
    assert '"Bearer ***"' in shown
    assert '"Basic ***"' in shown


def test_the_verdict_keeps_the_start_of_the_body_without_copying_a_short_one() -> None:
    spec = ResponseSpec()
    short = b'{"error":"busy"}'
    long = b"x" * 100_000

    assert judge(spec, 503, {}, short).head is short
    assert judge(spec, 200, {}, long).head == long[:EXCERPT_BYTES]
    assert judge(spec, 503, {}, short) == judge(spec, 503, {}, b"other")  # not part of equality
