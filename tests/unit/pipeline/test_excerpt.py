"""The response excerpt of an attempt record: text only, at most 1 KiB, never binary garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.excerpt import EXCERPT_BYTES, NOT_TEXT, SCHEME_CREDENTIAL, excerpt
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


def _excerpt_by_the_patterns(head: bytes) -> str | None:
    """What `excerpt` shows, by its patterns alone (no plain-text path): the oracle below."""
    if not head:
        return ""
    head = head[:EXCERPT_BYTES]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":
            return None
        text = head[: exc.start].decode("utf-8")
    if NOT_TEXT.search(text):
        return None
    return SCHEME_CREDENTIAL.sub(lambda found: f"{found.group(1)} ***", text)


_PIECES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
    st.sampled_from(["Bearer", "bEaReR", "BASIC", "basic", "Digest", "token", "TOKEN", "_token"]),
    st.sampled_from([" ", "  ", "\t", "\n", "=", ":", '"']),
    st.sampled_from(["abc123", "eyJhbGciOi.xyz-123", "dXNlcjpwYXNz", "a/b+c=d~e"]),
    st.sampled_from(["\u017f", "\u212a", "\u0130", "\u0131", "é", "注文", "\x85", "\x00"]),
    st.builds(  # a credential after a scheme, the scheme's letters in any case
        lambda scheme, upper, space, token: (
            "".join(c.upper() if u else c for c, u in zip(scheme, upper, strict=False))
            + space
            + token
        ),
        st.sampled_from(["bearer", "basic", "digest", "token"]),
        st.lists(st.booleans(), min_size=6, max_size=6),
        st.sampled_from([" ", "\t", "  "]),
        st.sampled_from(["abc123", "eyJhbGciOi.xyz-123", "dXNlcjpwYXNz", "abc"]),
    ),
)


@settings(max_examples=400)
@given(pieces=st.lists(_PIECES, max_size=40), cut=st.integers(min_value=0, max_value=3))
def test_the_plain_text_path_shows_what_the_patterns_show(pieces: list[str], cut: int) -> None:
    body = "".join(pieces).encode("utf-8")
    body = body * (1 + cut * (EXCERPT_BYTES // max(len(body), 1)))  # some past the cut

    assert excerpt(body) == _excerpt_by_the_patterns(body)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"Authorization: BEARER abcdef123", "Authorization: BEARER ***"),
        (b"basic abcdef123", "basic ***"),
        (b"x Digest abcdef123", "x Digest ***"),
        (b"(Token\tabcdef123)", "(Token ***)"),
        (b'{"access_token abcdef123"}', '{"access_token abcdef123"}'),  # no word boundary
        (b"token:abcdef123", "token:abcdef123"),  # no space after the scheme
        ("Ba\u017fic abcdef123".encode(), "Ba\u017fic ***"),  # long s folds to s, as re does
    ],
)
def test_credentials_after_a_scheme_in_any_case_are_masked(body: bytes, shown: str) -> None:
    assert excerpt(body) == shown
