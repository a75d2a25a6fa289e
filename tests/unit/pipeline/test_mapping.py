"""Field mapping: paths into the event, templates, types, defaults and required fields."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.errors import RenderError
from dispatcher.model.event import Event
from dispatcher.model.hook import FieldSpec
from dispatcher.pipeline.render.convert import convert, json_text, text_of
from dispatcher.pipeline.render.mapping import event_path, field_value, map_fields, parse_template
from dispatcher.pipeline.render.paths import MISSING, format_path, lookup, parse_path

EVENT = Event(
    id="ev-1",
    type="order.shipped",
    source="/orders",
    time="2026-11-02T09:30:00Z",
    subject="order-7",
    data={
        "order_id": 7,
        "total": 19.99,
        "customer": {"phone": "+254700000001", "name": "Amina", "vip": "yes"},
        "items": [{"sku": "A-1", "qty": "2"}, {"sku": "B-2", "qty": 1.5}],
        "first name": "Ami",
        "note": None,
        "evil": "{data.customer.phone} {{ __import__('os') }}",
    },
).attributes()


def value(**spec: Any) -> Any:
    spec.setdefault("name", "f")
    return field_value(FieldSpec.from_dict(spec), EVENT)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("data.customer.phone", ("data", "customer", "phone")),
        ("data.items[0].sku", ("data", "items", 0, "sku")),
        ("data.items[-1]", ("data", "items", -1)),
        ('data["first name"]', ("data", "first name")),
        ('data["a.b"].c', ("data", "a.b", "c")),
        ("", ()),
        (".", ()),
        ("[0].status", (0, "status")),  # in an answer that is a list
    ],
)
def test_paths_parse_dots_indices_and_quoted_keys(text: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data..x", "empty name at position 6"),
        ("data.", "cannot end with '.'"),
        ("data.[0]", "unexpected '[' after '.'"),
        ("data x", "unexpected ' ' at position 5"),
        ("a{b}", "unexpected '{' at position 2"),
    ],
)
def test_malformed_paths_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_path(text)


def test_format_path_writes_what_parse_path_reads() -> None:
    steps = ("hooks", 2, "headers", "X y", "z")
    assert format_path(steps) == 'hooks[2].headers["X y"].z'
    assert parse_path(format_path(steps)) == steps


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("bad\nkey", '["bad\\nkey"]'),
        ("a\x1b[31mred", '["a\\u001b[31mred"]'),
        ("line\u2028sep", '["line\\u2028sep"]'),
        ("del\x7f", '["del\\u007f"]'),
        ("evil\u202eexe.txt", '["evil\\u202eexe.txt"]'),
        ("tag\U000e0041", '["tag\\udb40\\udc41"]'),
        ('say "hi" \\o/', '["say \\"hi\\" \\\\o/"]'),
    ],
)
def test_format_path_writes_a_hostile_key_on_one_line_and_escaped(key: str, written: str) -> None:
    """A problem names the key a hooks file or an API request wrote: its control characters
    must not start a new line of the CLI's output or a log, nor reach the terminal."""
    assert format_path(("hooks", 0, key)) == f"hooks[0]{written}"
    assert parse_path(format_path(("hooks", 0, key))) == ("hooks", 0, key)


@given(st.lists(st.one_of(st.text(min_size=1), st.integers(min_value=0)), min_size=1))
def test_format_path_round_trips_and_prints_on_one_line(steps: list[str | int]) -> None:
    if isinstance(steps[0], int):
        steps = ["root", *steps]  # a path starts with a key
    written = format_path(tuple(steps))
    assert parse_path(written) == tuple(steps)
    assert len(written.splitlines()) == 1
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in written)


def test_lookup_tells_missing_from_null() -> None:
    assert lookup(EVENT, ("data", "note")) is None
    assert lookup(EVENT, ("data", "nope")) is MISSING
    assert lookup(EVENT, ("data", "items", 5)) is MISSING
    assert lookup(EVENT, ("data", "order_id", "x")) is MISSING


def test_event_paths_must_start_at_an_event_attribute() -> None:
    with pytest.raises(ValueError, match="'dta' is not part of an event"):
        event_path("dta.x")
    with pytest.raises(ValueError, match="cannot start with an index: an event is an object"):
        event_path("[0].x")
    assert event_path("subject") == ("subject",)


def test_from_reads_event_attributes_and_list_items() -> None:
    assert value(**{"from": "data.items[1].sku"}) == "B-2"
    assert value(**{"from": "id"}) == "ev-1"
    assert value(**{"from": "subject"}) == "order-7"


def test_value_is_a_constant() -> None:
    assert value(value="DUGAA") == "DUGAA"
    assert value(value=3, type="string") == "3"


def test_template_substitutes_paths_and_keeps_braces_in_data_inert() -> None:
    got = value(template="Order {data.order_id} for {data.customer.name}: {{ok}} {data.evil}")
    assert got == "Order 7 for Amina: {ok} {data.customer.phone} {{ __import__('os') }}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Order {data.order_id", "unpaired '{'"),
        ("Order }", "unpaired '}'"),
        ("{dta.x}", "not part of an event"),
        ("{}", "empty"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_template(template)


def test_template_missing_placeholder_is_empty_unless_required() -> None:
    assert value(template="[{data.nope}]") == "[]"
    with pytest.raises(RenderError, match=r"field 'f': placeholder \{data.nope\} is missing"):
        value(template="[{data.nope}]", required=True)


@pytest.mark.parametrize("required", [False, True])
def test_a_template_with_a_missing_placeholder_takes_the_default(required: bool) -> None:
    # neither "Order " with a hole nor a required field failing although it has a default
    assert value(template="Order {data.nope}", default="N/A", required=required) == "N/A"
    assert value(template="{data.note}", default=0, type="integer", required=required) == 0
    assert value(template="Order {data.order_id}", default="N/A", required=required) == "Order 7"


def test_missing_value_takes_default_then_fails_if_required_else_null() -> None:
    assert value(**{"from": "data.nope"}, default="x") == "x"
    assert value(**{"from": "data.note"}, default=5, type="string") == "5"
    assert value(**{"from": "data.nope"}) is None
    with pytest.raises(RenderError, match=r"field 'f' is required but data\.nope is missing"):
        value(**{"from": "data.nope"}, required=True)


def test_decimal_keeps_the_digits_written() -> None:
    assert value(**{"from": "data.total"}, type="decimal") == Decimal("19.99")
    assert json_text({"a": convert(0.1, "decimal")}) == '{"a":0.1}'
    assert convert("12345678901234567890.123456789", "decimal") == Decimal(
        "12345678901234567890.123456789"
    )
    assert text_of(convert("1E+3", "decimal")) == "1000"


@pytest.mark.parametrize(
    ("type_name", "raw"),
    [
        ("decimal", "1e999999999"),
        ("decimal", "1e-999999999"),
        ("decimal", "-1e4300"),
        ("decimal", "1e-4300"),
        ("integer", "1e4300"),
        ("integer", "-1.5e5000"),
    ],
)
def test_a_number_too_long_to_write_is_refused_before_it_is_written(
    type_name: str, raw: str
) -> None:
    # eleven characters of event data would be a gigabyte of digits and seconds of CPU
    with pytest.raises(ValueError, match="more than 4300 digits before or after the point"):
        convert(raw, type_name)


def test_a_number_of_up_to_4300_digits_is_written_whole() -> None:
    assert text_of(convert("1e4299", "decimal")) == "1" + "0" * 4299
    assert text_of(convert("-1e-4299", "decimal")) == "-0." + "0" * 4298 + "1"
    assert convert("1e4299", "integer") == 10**4299


@pytest.mark.parametrize("raw", ["12_34", "1_000.50", " 1_0 "])
def test_decimal_refuses_python_digit_grouping(raw: str) -> None:
    # Decimal reads `12_34` as 1234: a receiver would get an amount nobody wrote
    with pytest.raises(ValueError, match="is not a number"):
        convert(raw, "decimal")


def test_decimal_format_pads_places_and_never_rounds() -> None:
    assert str(convert(2499.9, "decimal", "0.00")) == "2499.90"
    assert str(convert("7", "decimal", "0.000")) == "7.000"
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        convert("1.005", "decimal", "0.00")
    with pytest.raises(ValueError, match="not of the form"):
        convert("1", "decimal", "#.##")


@pytest.mark.parametrize(("raw", "want"), [("42", 42), (42.0, 42), ("42.00", 42), (-3, -3)])
def test_integer_accepts_whole_numbers(raw: Any, want: int) -> None:
    assert convert(raw, "integer") == want


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (42.5, "not a whole number"),
        ("4x", "not a number"),
        ("12_34", "not a number"),
        (True, "is a boolean"),
        (None, "NoneType is not a number"),
        ([1], "list is not a number"),
        ("nan", "not a finite number"),
        ("inf", "not a finite number"),
    ],
)
def test_integer_refuses_what_is_not_a_whole_number(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        convert(raw, "integer")


def test_a_typed_constant_from_a_secret_reference_is_converted_when_it_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUGAA_TEST_ACCOUNT", "0012345")
    assert value(value="${env:DUGAA_TEST_ACCOUNT}", type="integer") == 12345
    monkeypatch.setenv("DUGAA_TEST_RATE", "1.5")
    assert value(value="${env:DUGAA_TEST_RATE}", type="decimal", format="0.00") == Decimal("1.50")


@pytest.mark.parametrize(
    ("secret", "kind", "fmt"),
    [
        ("acct-9f2c81e0-qwzv-bxkj-longer-than-any-clipped-quote-7731", "integer", None),
        ("x1", "integer", None),  # shorter than masking looks for
        ("1.23456", "decimal", "0.00"),  # the reason would quote the number
        ("qz-s3cr3t", "boolean", None),
        ("s3cr3t-wqz", "datetime", None),
    ],
)
def test_a_secret_that_does_not_convert_fails_the_render_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, secret: str, kind: str, fmt: str | None
) -> None:
    monkeypatch.setenv("DUGAA_TEST_ACCOUNT", secret)
    spec = {"value": "${env:DUGAA_TEST_ACCOUNT}", "type": kind}
    if fmt:
        spec["format"] = fmt
    with pytest.raises(RenderError) as raised:
        value(name="account", **spec)
    message = str(raised.value)
    assert message.startswith(f"field 'account': cannot convert to {kind}")
    assert "secret" in message
    width = min(len(secret), 4)  # nor any piece of it
    assert not any(secret[i : i + width] in message for i in range(len(secret) - width + 1))


def test_a_default_that_does_not_convert_is_shown_as_ever() -> None:
    with pytest.raises(RenderError, match="'soon' is not an ISO 8601 date-time"):
        value(**{"from": "data.missing", "default": "soon", "type": "datetime"})


def test_bad_conversion_names_the_field() -> None:
    with pytest.raises(RenderError, match="field 'f': cannot convert to integer"):
        value(**{"from": "data.items[1].qty"}, type="integer")


@pytest.mark.parametrize(
    ("raw", "want"),
    [(True, True), ("yes", True), ("FALSE", False), (0, False), ("on", True), ("n", False)],
)
def test_boolean_words(raw: Any, want: bool) -> None:
    assert convert(raw, "boolean") is want


@pytest.mark.parametrize("raw", ["maybe", 2, None, 1.0])
def test_boolean_refuses_other_values(raw: Any) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        convert(raw, "boolean")


@pytest.mark.parametrize(
    ("raw", "fmt", "want"),
    [
        ("2026-11-02T09:30:00Z", None, "2026-11-02T09:30:00+00:00"),
        ("2026-11-02T09:30:00+03:00", "%d.%m.%Y %H:%M", "02.11.2026 09:30"),
        ("2026-11-02T09:30:00Z", "epoch", 1793611800),
        ("2026-11-02T09:30:00.250Z", "epoch_ms", 1793611800250),
        (1793611800, "iso8601", "2026-11-02T09:30:00+00:00"),
        ("2026-11-02", "%Y/%m/%d", "2026/11/02"),
    ],
)
def test_datetime_parses_iso_or_epoch_and_writes_the_format(raw: Any, fmt: Any, want: Any) -> None:
    assert convert(raw, "datetime", fmt) == want


@pytest.mark.parametrize(
    ("raw", "fmt", "want"),
    [
        ("2026-12-31T23:59:59.900+00:00", "epoch", 1798761599),  # not the next year's first
        ("2026-12-31T23:59:59.999999+00:00", "epoch", 1798761599),
        ("2026-11-02T09:30:00.500Z", "epoch", 1793611800),  # a half is no reason to round up
        ("2026-11-02T12:30:00.700+03:00", "epoch", 1793611800),
        ("2026-01-01T00:00:00.000600+00:00", "epoch_ms", 1767225600000),
        ("2026-01-01T00:00:00.000999+00:00", "epoch_ms", 1767225600000),
        ("2026-01-01T00:00:00.001500+00:00", "epoch_ms", 1767225600001),
        ("1969-12-31T23:59:59.500Z", "epoch", -1),  # toward the past, as Unix time counts
        ("1969-12-31T23:59:59.999500Z", "epoch_ms", -1),
        ("9999-12-31T23:59:59.999999Z", "epoch_ms", 253402300799999),  # no float to lose it
        (1.9999999, "epoch", 1),  # epoch seconds as a producer's float: not rounded up either
        (1.9999999, "epoch_ms", 1999),
        (1700000000.9999995, "epoch", 1700000000),
        (-0.0000001, "epoch", -1),
        (Decimal("1.9999999"), "iso8601", "1970-01-01T00:00:01.999999+00:00"),
        (1700000000.1, "iso8601", "2023-11-14T22:13:20.100000+00:00"),
    ],
)
def test_epoch_is_the_second_or_millisecond_the_moment_falls_in(
    raw: Any, fmt: str, want: Any
) -> None:
    assert convert(raw, "datetime", fmt) == want


@pytest.mark.parametrize("raw", [1e12, -1e12, 1e300, Decimal("1e999999999"), 253402300800])
def test_an_epoch_past_what_a_datetime_holds_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match="out of range for a timestamp"):
        convert(raw, "datetime")


def test_datetime_refuses_text_that_is_not_a_date() -> None:
    with pytest.raises(ValueError, match="not an ISO 8601"):
        convert("next tuesday", "datetime")


def test_string_writes_numbers_plainly_and_structures_as_json() -> None:
    assert convert(1e-7, "string") == "0.0000001"
    assert convert(True, "string") == "true"
    assert convert({"a": [1, None]}, "string") == '{"a":[1,null]}'


def test_map_fields_keeps_names_exactly_and_in_order() -> None:
    specs = [
        FieldSpec.from_dict({"name": n, "value": i}) for i, n in enumerate(["Name", "name", "a.b"])
    ]
    assert map_fields(specs, EVENT) == [("Name", 0), ("name", 1), ("a.b", 2)]


def test_json_text_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        json_text(float("nan"))
