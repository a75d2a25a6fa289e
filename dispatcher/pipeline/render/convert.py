"""Field `type` conversions and the text form of values, exact for decimals. Pure.

Exactness of decimals: event data arrives through `json.loads`, so a JSON number such as
`19.99` is a Python float by the time it reaches us. `repr(float)` is the shortest text that
reads back as the same float, so `Decimal(repr(x))` recovers the digits the producer wrote for
every number of up to 15 significant digits (all amounts of money in practice) and never
introduces binary noise such as `19.989999999999998`. Producers needing more digits send the
number as a JSON string, which is converted digit for digit.

Size: a number in a string may carry an exponent (`"1e999999999"`, eleven characters), but a body
writes it in plain notation, a gigabyte of zeros that takes seconds to write. `decimal` and
`integer` fields refuse a number of more than `MAX_DIGITS` digits before or after the point,
the most Python writes an integer with, before any of that work is done.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import orjson

TYPES = ("string", "integer", "decimal", "boolean", "datetime")
DATETIME_SPECIAL = ("iso8601", "epoch", "epoch_ms")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MILLISECOND = timedelta(milliseconds=1)
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
_PLACES = re.compile(r"0(\.0+)?")
MAX_DIGITS = 4300  # sys.int_info.default_max_str_digits: str() of a longer int raises anyway


def to_decimal(value: Any) -> Decimal:
    """The exact decimal that `value` stands for; ValueError when it is not a number."""
    if isinstance(value, bool):
        raise ValueError(f"{_show(value)} is a boolean, not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            # Python's digit grouping (`1_000`), which Decimal reads and no data has
            if "_" in value:
                raise InvalidOperation
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{_show(value)} is not a number") from None
    else:
        raise ValueError(f"a {type(value).__name__} is not a number")
    if not result.is_finite():
        raise ValueError(f"{_show(value)} is not a finite number")
    return result


def with_places(number: Decimal, fmt: str) -> Decimal:
    """`number` written with the decimal places of `fmt` (`0.00`: two); never rounds."""
    if _PLACES.fullmatch(fmt) is None:
        raise ValueError(f"decimal format {fmt!r} is not of the form 0, 0.0, 0.00, ...")
    places = len(fmt) - 2 if "." in fmt else 0
    try:
        exact = number.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        raise ValueError(f"{number} has too many digits") from None
    if exact != number:
        raise ValueError(f"{number} has more than {places} decimal places; it is never rounded")
    return exact


def writable(number: Decimal) -> Decimal:
    """`number`, when its plain notation has at most `MAX_DIGITS` digits on either side of the
    point; ValueError when it has more (its digits are not counted: they are no more than the
    text it was read from, and `adjusted` is cheap)."""
    if -MAX_DIGITS < number.adjusted() < MAX_DIGITS:
        return number
    raise ValueError(
        f"{_show(str(number))} has more than {MAX_DIGITS} digits before or after the point"
    )


def to_integer(value: Any) -> int:
    """`value` as an integer; ValueError when it has a fractional part (never truncated)."""
    number = writable(to_decimal(value))
    if number != number.to_integral_value():
        raise ValueError(f"{_show(value)} is not a whole number")
    return int(number)


def to_boolean(value: Any) -> bool:
    """`value` as a boolean: true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"{_show(value)} is not a boolean")


def to_datetime(value: Any) -> datetime:
    """`value` as a datetime: ISO 8601 text or epoch seconds (UTC)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{_show(value)} is not an ISO 8601 date-time") from None
    raise ValueError(f"a {type(value).__name__} is not a date-time")


def _from_epoch(value: int | float | Decimal) -> datetime:
    """The moment `value` seconds after the Unix epoch, to the microsecond it falls in: its
    digits as written, floored (`fromtimestamp` rounds a float to the nearest microsecond, so
    `1.9999999` became second 2, and `epoch` wrote a second the moment is not in)."""
    try:
        if type(value) is int:  # whole seconds, as most are: nothing to floor
            return EPOCH + timedelta(seconds=value)
        seconds = to_decimal(value)
        if seconds.adjusted() >= _EPOCH_DIGITS:  # before any arithmetic on `1e999999999`
            raise OverflowError
        micro = seconds.quantize(_MICROSECOND_PLACES, rounding=ROUND_FLOOR).scaleb(6)
        return EPOCH + timedelta(microseconds=int(micro))
    except OverflowError:
        raise ValueError(f"{_show(value)} is out of range for a timestamp") from None


_EPOCH_DIGITS = 12  # 1e12 seconds is past the year 9999, the last a datetime holds
_MICROSECOND_PLACES = Decimal("0.000001")


def format_datetime(moment: datetime, fmt: str | None) -> str | int:
    """`moment` written as `fmt`: a strftime pattern, `iso8601` (default), `epoch`, `epoch_ms`."""
    if fmt is None or fmt == "iso8601":
        return moment.isoformat()
    if fmt in ("epoch", "epoch_ms"):
        # the second (millisecond) the moment falls in, as Unix time counts: floored toward the
        # past, never rounded up into the next one; exact, in whole microseconds
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return (aware - EPOCH) // (_SECOND if fmt == "epoch" else _MILLISECOND)
    return moment.strftime(fmt)


def convert(value: Any, type_name: str | None, fmt: str | None = None) -> Any:
    """`value` converted to the field type `type_name` (None: unchanged); ValueError if it cannot."""
    if type_name is None:
        return value
    if type_name == "string":
        return text_of(value)
    if type_name == "integer":
        return to_integer(value)
    if type_name == "decimal":
        number = writable(to_decimal(value))
        return number if fmt is None else with_places(number, fmt)
    if type_name == "boolean":
        return to_boolean(value)
    if type_name == "datetime":
        return format_datetime(to_datetime(value), fmt)
    raise ValueError(f"unknown type {type_name!r}")


def text_of(value: Any) -> str:
    """The text a value is written as in csv, xml, form and templates (JSON style for the rest)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return decimal_text(to_decimal(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json_text(value)


def decimal_text(number: Decimal) -> str:
    """`number` in plain notation, never with an exponent (`1E+2` is written `100`)."""
    return format(number, "f")


def json_text(value: Any) -> str:
    """Compact JSON for `value`, writing decimals digit for digit (json.dumps cannot)."""
    if isinstance(value, dict):
        items = (f"{_json_string(str(k))}:{json_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Decimal):
        return decimal_text(to_decimal(value))
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if value is None or isinstance(value, int):
        return json.dumps(value)
    raise ValueError(f"a {type(value).__name__} ({_show(value)}) cannot be written as JSON")


def _json_string(text: str) -> str:
    try:
        return orjson.dumps(text).decode()
    except TypeError:  # a lone surrogate from a `\\ud800` escape: keep it escaped
        return json.dumps(text)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
