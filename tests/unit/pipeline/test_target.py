"""Placeholders in a hook's URL and headers: encoded for their place, never moving the host."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.errors import RenderError
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.render.convert import text_of
from dispatcher.pipeline.render.target import render_headers, render_url, url_template
from dispatcher.pipeline.request import build_request

URL = "https://api.example.com:8443/v1/orders/{data.order_id}/status?ref={id}&lang=en"
NASTY = st.sampled_from(
    ["../", "..", ".", "?", "#", "&", "=", "%2F", "%", "/", "a/b", " ", "é", "😀", "\\", "@h:1"]
)
VALUES = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.lists(NASTY, min_size=1, max_size=4).map("".join),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def event(order_id: Any = "o-1", **extra: Any) -> dict[str, Any]:
    return Event(
        id="e/1?", type="t", source="s", subject="sub", data={"order_id": order_id, **extra}
    ).attributes()


@given(VALUES, VALUES)
def test_for_any_value_the_url_keeps_scheme_host_port_segments_and_parameters(
    order_id: Any, event_id: Any
) -> None:
    attributes = {**event(order_id), "id": str(event_id)}
    rendered = render_url(URL, attributes)
    split, sent = urlsplit(rendered), httpx.URL(rendered)
    assert (split.scheme, split.hostname, split.port, split.fragment) == (
        "https",
        "api.example.com",
        8443,
        "",
    )
    assert (sent.scheme, sent.host, sent.port, sent.fragment) == (
        "https",
        "api.example.com",
        8443,
        "",
    )
    segments = split.path.split("/")
    assert len(segments) == 5
    assert unquote(segments[3]) == text_of(order_id)
    assert segments[3] not in (".", "..")
    assert [p.split("=")[0] for p in split.query.split("&")] == ["ref", "lang"]
    assert unquote(split.query.split("&")[0].removeprefix("ref=")) == str(event_id)
    assert len(sent.raw_path.split(b"?")[0].split(b"/")) == 5  # httpx normalises nothing away


def test_a_url_without_placeholders_is_sent_as_written() -> None:
    url = "https://h.example/a%20b?x=1"
    assert render_url(url, event()) is url


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("..", "%2E%2E"),
        ("a?b#c", "a%3Fb%23c"),
        ("%2F", "%252F"),
        ("ü", "%C3%BC"),
        (7, "7"),
        (12.5, "12.5"),
    ],
)
def test_values_are_percent_encoded_for_a_path_segment(value: Any, segment: str) -> None:
    assert (
        render_url("https://h.example/o/{data.order_id}", event(value))
        == f"https://h.example/o/{segment}"
    )


@pytest.mark.parametrize("missing", [{"data.order_id": None}, {}])
def test_a_missing_or_null_value_is_a_render_error(missing: dict[str, Any]) -> None:
    attributes = event(None)
    with pytest.raises(RenderError, match=r"placeholder \{data.order_id\} is missing"):
        render_url("https://h.example/o/{data.order_id}", attributes)
    with pytest.raises(RenderError, match=r"placeholder \{data.nope\} is missing"):
        render_headers((("X-Order", "{data.nope}"),), attributes)


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "x\r\nSet-Cookie: y"])
def test_cr_lf_or_nul_in_a_header_value_is_a_render_error(bad: str) -> None:
    with pytest.raises(RenderError, match="cannot hold CR, LF or NUL") as caught:
        render_headers((("X-Order", "id-{data.order_id}"),), event(bad))
    assert bad not in str(caught.value)


@pytest.mark.parametrize("bad", ["Bob\x1b[31m", "a\x01b", "a\x7f", "a\x0bb", "a\x1fb"])
def test_another_control_character_in_a_header_value_is_a_render_error(bad: str) -> None:
    """RFC 9110 allows no control character but tab in a field value: Node's and Go's servers
    answer such a request 400, a permanent failure that would not say which header was wrong."""
    with pytest.raises(RenderError, match="cannot hold a control character") as caught:
        render_headers((("X-Order", "id-{data.order_id}"),), event(bad))
    assert "header X-Order" in str(caught.value)
    assert bad not in str(caught.value)


PRINTABLE_OR_TAB = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t")


@given(st.text(PRINTABLE_OR_TAB, max_size=30))
def test_any_other_header_value_is_written_as_it_is(value: str) -> None:
    [(name, rendered)] = render_headers((("X-Order", "id-{data.order_id}-{{x}}"),), event(value))
    assert (name, rendered) == ("X-Order", f"id-{value}-{{x}}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://{data.host}/x", "not in the host"),
        ("https://h.example:{data.port}/x", "not in the host"),
        ("https://h.example/x#{id}", "only in the path and the query"),
        ("https://h.example/{data.order_id", "in the path: unpaired '{'"),
        ("https://h.example/x?{payload.x}", "in the query: placeholder {payload.x}"),
    ],
)
def test_placeholders_outside_path_and_query_are_refused_at_load(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        url_template(url)


def test_the_request_goes_to_the_rendered_url_with_the_same_idempotency_key() -> None:
    hook = Hook.from_dict(
        {
            "id": "status",
            "events": ["t"],
            "url": "https://h.example/orders/{data.order_id}/status?s={subject}",
            "headers": {"X-Order": "{data.order_id}", "X-Static": "plain"},
        }
    )
    ev = Event(id="e1", type="t", source="s", subject="a b", data={"order_id": "o/7"})
    request = build_request(hook, ev, "msg_1")
    assert request.url == "https://h.example/orders/o%2F7/status?s=a%20b"
    assert request.header("x-order") == "o/7"
    assert request.header("x-static") == "plain"
    assert request.header("webhook-id") == "msg_1"
    with pytest.raises(RenderError) as caught:
        build_request(hook, Event(id="e2", type="t", source="s", data={}), "msg_2")
    assert caught.value.kind == "render"


def test_text_other_than_ascii_in_a_header_value_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="must be ASCII text"):
        render_headers((("X-Name", "{data.order_id}"),), event("Zoë"))


def test_doubled_braces_in_a_url_are_literal_and_encoded_as_any_url_would_be() -> None:
    rendered = render_url("https://h.example/{{x}}/{data.order_id}", event(1))
    assert rendered == "https://h.example/{x}/1"
    assert httpx.URL(rendered).raw_path == b"/%7Bx%7D/1"
