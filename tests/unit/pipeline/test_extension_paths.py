"""Hooks reach a producer's extension attributes at the path root `extensions`: in filters,
fields, templates, URL and header placeholders; a hook that writes `extension.x` or `region` is
refused at load, pointed to `extensions.x`."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.errors import RenderError
from dispatcher.hooks.loader import validate_hooks_text
from dispatcher.model.event import Event
from dispatcher.model.hook import FieldSpec, Hook
from dispatcher.pipeline.filter import admit, exclusions
from dispatcher.pipeline.render.mapping import event_path, map_fields
from dispatcher.pipeline.render.target import request_target

EU = Event(id="e1", type="order.shipped", source="shop", extensions={"region": "eu", "n": 2})
US = Event(id="e2", type="order.shipped", source="shop", extensions={"region": "us"})
BARE = Event(id="e3", type="order.shipped", source="shop")


def hook(**definition: Any) -> Hook:
    return Hook.from_dict(
        {
            "id": "erp",
            "events": ["order.shipped"],
            "url": "https://erp.example.com/in",
            **definition,
        }
    )


def test_a_filter_on_an_extension_admits_only_the_events_that_carry_its_value() -> None:
    erp = hook(filter=[{"path": "extensions.region", "equals": "eu"}])

    assert [admit([erp], event)[0] == [erp] for event in (EU, US, BARE)] == [True, False, False]


def test_a_filter_says_which_extension_condition_an_event_fails() -> None:
    erp = hook(filter=[{"path": "extensions.region", "equals": "eu"}])

    assert exclusions(erp, US) == ['filter: expected extensions.region to equal "eu", got "us"']


def test_an_extension_given_as_text_in_binary_mode_still_equals_its_number() -> None:
    erp = hook(filter=[{"path": "extensions.n", "in": [2, 3]}])
    binary = Event(id="e", type="order.shipped", source="s", extensions={"n": "2"})

    assert admit([erp], binary)[0] == [erp]


def test_fields_and_templates_read_extensions() -> None:
    fields = (
        FieldSpec.from_dict({"name": "region", "from": "extensions.region"}),
        FieldSpec.from_dict({"name": "text", "template": "{extensions.region}/{extensions.n}"}),
        FieldSpec.from_dict({"name": "none", "from": "extensions.channel", "default": "web"}),
    )

    assert map_fields(fields, EU.attributes()) == [
        ("region", "eu"),
        ("text", "eu/2"),
        ("none", "web"),
    ]
    assert map_fields(fields, BARE.attributes())[0] == ("region", None)


def test_url_and_header_placeholders_read_extensions() -> None:
    erp = hook(
        url="https://erp.example.com/{extensions.region}/in?n={extensions.n}",
        headers={"X-Region": "{extensions.region}"},
    )

    url, headers = request_target(erp, EU)

    assert url == "https://erp.example.com/eu/in?n=2"
    assert ("X-Region", "eu") in headers


def test_a_header_placeholder_of_an_extension_the_event_lacks_is_a_render_error() -> None:
    erp = hook(headers={"X-Region": "{extensions.region}"})

    with pytest.raises(RenderError, match=r"placeholder \{extensions.region\} is missing"):
        request_target(erp, BARE)


def test_extensions_is_a_path_root() -> None:
    assert event_path("extensions.region") == ("extensions", "region")
    assert event_path('extensions["my.ext"]') == ("extensions", "my.ext")


@pytest.mark.parametrize(
    ("path", "meant"),
    [("extension.region", "extensions.region"), ("region", "extensions.region")],
)
def test_a_path_that_is_not_part_of_an_event_points_to_the_extension_it_may_mean(
    path: str, meant: str
) -> None:
    with pytest.raises(ValueError, match="is not part of an event") as caught:
        event_path(path)

    assert f"an extension attribute is {meant})" in str(caught.value)


def test_hooks_validate_takes_extensions_and_refuses_extension_in_every_place() -> None:
    text = """\
hooks:
  - id: erp-eu
    events: [order.placed]
    url: https://erp.example.com/orders/{extensions.region}
    headers: {X-Region: "{extensions.region}"}
    filter: [{path: extensions.region, equals: eu}]
    fields:
      - {name: region, from: extensions.region}
      - {name: text, template: "from {extensions.channel}"}
  - id: erp-typo
    events: [order.placed]
    url: https://erp.example.com/orders/{extension.region}
    headers: {X-Region: "{extension.region}"}
    filter: [{path: extension.region, equals: eu}]
    fields:
      - {name: region, from: extension.region}
      - {name: text, template: "from {extension.channel}"}
"""
    found = [(p.path, p.message) for p in validate_hooks_text(text, "h.yaml")]

    assert sorted(path for path, _ in found) == [
        "hooks[1].fields[0].from",
        "hooks[1].fields[1].template",
        "hooks[1].filter[0].path",
        "hooks[1].headers.X-Region",
        "hooks[1].url",
    ]
    assert all("'extension' is not part of an event" in message for _, message in found)
