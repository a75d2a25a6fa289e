"""The editor's fields form writes what the admin changed, and nothing the hook left out."""

from __future__ import annotations

from dispatcher.api.pages.fields import with_fields

LEFT_OUT = {"id": "erp", "events": ["order.paid"], "url": "https://erp.example.com/in"}
AS_SHOWN = {  # the form of LEFT_OUT as the page fills it in: the defaults selected
    "id": "erp",
    "events": "order.paid",
    "url": "https://erp.example.com/in",
    "method": "POST",
    "format": "json",
    "timeout": "",
    "enabled": "on",
}


def test_a_form_sent_back_unchanged_adds_no_default_the_hook_left_out() -> None:
    assert with_fields(LEFT_OUT, AS_SHOWN) == LEFT_OUT


def test_a_choice_other_than_the_default_is_written() -> None:
    changed = with_fields(LEFT_OUT, {**AS_SHOWN, "method": "PUT", "format": "xml", "enabled": ""})
    assert changed == {**LEFT_OUT, "method": "PUT", "format": "xml", "enabled": False}


def test_a_choice_the_hook_wrote_stays_written_even_as_the_default() -> None:
    written = {**LEFT_OUT, "method": "PUT", "format": "csv", "enabled": False}
    assert with_fields(written, AS_SHOWN) == {
        **LEFT_OUT,
        "method": "POST",
        "format": "json",
        "enabled": True,
    }
