"""A hook's definition as the value the pipeline uses: what `Hook.from_dict` makes of it."""

from __future__ import annotations

import pytest

from dispatcher.hooks.loader import load_hooks_text
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.request import build_request

EVENT = Event.from_dict({"id": "e1", "type": "a", "source": "/s", "specversion": "1.0", "data": {}})


@pytest.mark.parametrize(
    ("value", "sent"),
    [(True, "true"), (False, "false"), (7, "7"), (2.5, "2.5"), ("On", "On"), ("True", "True")],
)
def test_a_header_value_is_sent_as_written(value: object, sent: str) -> None:
    hook = Hook.from_dict({"id": "h", "url": "https://x.example.com/", "headers": {"X-V": value}})
    assert hook.headers == (("X-V", sent),)


def test_a_yaml_boolean_goes_out_in_a_header_as_in_the_body() -> None:
    text = """\
hooks:
  - id: h
    events: [a]
    url: https://x.example.com/api
    format: form
    headers: {X-Sandbox: true, X-Live: false}
    fields: [{name: sandbox, value: true}, {name: live, value: false}]
"""
    request = build_request(load_hooks_text(text, "hooks.yaml")[0], EVENT, "msg_1")
    assert request.content == b"sandbox=true&live=false"
    assert (request.header("X-Sandbox"), request.header("X-Live")) == ("true", "false")


@pytest.mark.parametrize("value", ["application/xml", "{data.accept}"])
def test_a_hooks_own_accept_is_sent_instead_of_the_default_not_beside_it(value: str) -> None:
    event = Event(id="e1", type="a", source="/s", data={"accept": "application/xml"})
    hook = Hook.from_dict(
        {"id": "h", "url": "https://x.example.com/", "headers": {"Accept": value}}
    )
    request = build_request(hook, event, "msg_1")
    accepts = [v for name, v in request.headers if name.lower() == "accept"]
    assert accepts == ["application/xml"]
    assert request.header("accept-encoding") == "gzip, deflate"


@pytest.mark.parametrize("value", ["text/xml; charset=utf-8", "{data.type}"])
def test_a_hooks_own_content_type_is_sent_instead_of_the_formats(value: str) -> None:
    """A SOAP 1.1 endpoint answers 415 to `application/xml`: its hook says `text/xml`."""
    event = Event(id="e1", type="a", source="/s", data={"type": "text/xml; charset=utf-8"})
    raw = {"id": "h", "url": "https://x.example.com/", "format": "xml"}
    hook = Hook.from_dict({**raw, "headers": {"Content-Type": value}})
    request = build_request(hook, event, "msg_1")
    types = [v for name, v in request.headers if name.lower() == "content-type"]
    assert types == ["text/xml; charset=utf-8"]
    own = build_request(Hook.from_dict(raw), event, "m").header("content-type")
    assert own == "application/xml; charset=utf-8"


def test_without_an_accept_of_its_own_a_hook_accepts_anything() -> None:
    request = build_request(
        Hook.from_dict({"id": "h", "url": "https://x.example.com/"}), EVENT, "m"
    )
    assert [v for name, v in request.headers if name.lower() == "accept"] == ["*/*"]
