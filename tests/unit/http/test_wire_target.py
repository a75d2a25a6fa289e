"""What the delivery path's client writes for a URL: the request line's target, the Host
header, and the URLs it refuses before connecting."""

from __future__ import annotations

import pytest

from dispatcher.errors import BlockedDestination
from dispatcher.http.wire import parse_target, serialize
from dispatcher.model.request import Request


def head(url: str) -> bytes:
    """The request line and Host header written for a POST to `url`."""
    written = serialize(Request("POST", url, (), b""), parse_target(url))
    return written.split(b"\r\ncontent-length")[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # as httpx writes them: a request line carries no space and nothing beyond ASCII
        ("http://h.test/a b?q=ü x", b"POST /a%20b?q=%C3%BC%20x HTTP/1.1\r\nhost: h.test"),
        ("https://bücher.test/envío", b"POST /env%C3%ADo HTTP/1.1\r\nhost: xn--bcher-kva.test"),
        ("http://пример.рф:8080/", b"POST / HTTP/1.1\r\nhost: xn--e1afmkfd.xn--p1ai:8080"),
        ('http://h.test/a"b{c}', b"POST /a%22b%7Bc%7D HTTP/1.1\r\nhost: h.test"),
        # an encoded URL is written as it stands: %2F stays, + stays
        ("http://h.test/a%2Fb?x=%2F&y=a+b", b"POST /a%2Fb?x=%2F&y=a+b HTTP/1.1\r\nhost: h.test"),
        ("http://[::1]:9/x", b"POST /x HTTP/1.1\r\nhost: [::1]:9"),
        ("https://h.test:443", b"POST / HTTP/1.1\r\nhost: h.test"),
    ],
)
def test_the_request_line_and_host_are_written_as_httpx_writes_them(
    url: str, expected: bytes
) -> None:
    assert head(url) == expected


def test_an_idn_host_is_resolved_and_named_in_idna() -> None:
    target = parse_target("https://bücher.test/x")
    assert (target.host, target.host_header) == ("xn--bcher-kva.test", "xn--bcher-kva.test")


@pytest.mark.parametrize("url", ["http://h.test/a\tb", "http://h.test/a\x7fb"])
def test_a_control_character_in_the_url_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(BlockedDestination, match="cannot be sent"):
        parse_target(url)
