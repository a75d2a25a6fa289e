"""Body encoders (json, csv, form) and the shapes they take from mapped fields or raw data. Pure.

Mapped fields arrive as ordered (name, value) pairs. json and xml nest dotted names
(`customer.name` -> {"customer": {"name": ...}}); csv and form keep each name as written.
Raw event data (a hook without `fields`) is written as it is: csv writes an object as one row
and a list of objects as rows; form writes an object's keys, nested ones with dotted names.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from dispatcher.pipeline.render.convert import decimal_text, json_text, text_of, to_decimal

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"

Pairs = Sequence[tuple[str, Any]]
# what a spreadsheet reads as the start of a formula (OWASP "CSV injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def nest(pairs: Pairs) -> dict[str, Any]:
    """An object built from dotted names, keys in first-written order; ValueError on a clash."""
    root: dict[str, Any] = {}
    made = {id(root)}  # objects built here, as opposed to object values taken from the event
    for name, value in pairs:
        if "." not in name:  # most names: a key of the root
            if name in root:
                raise ValueError(f"{name!r} is written twice or is both a value and an object")
            root[name] = value
            continue
        parents, leaf = _dotted(name)
        node = root
        for i, part in enumerate(parents):
            child = node.get(part, _ABSENT)
            if child is _ABSENT:
                child = node[part] = {}
                made.add(id(child))
            elif id(child) not in made:
                raise ValueError(f"{'.'.join(parents[: i + 1])!r} is both a value and an object")
            node = child
        if leaf in node:
            raise ValueError(f"{name!r} is written twice or is both a value and an object")
        node[leaf] = value
    return root


_ABSENT = object()
_DOTTED: dict[str, tuple[tuple[str, ...], str]] = {}  # a hook's field names, split once
_DOTTED_KEPT = 4096


def _dotted(name: str) -> tuple[tuple[str, ...], str]:
    """The parents and the leaf of a dotted name."""
    split = _DOTTED.get(name)
    if split is None:
        *parents, leaf = name.split(".")
        split = (tuple(parents), leaf)
        if len(_DOTTED) < _DOTTED_KEPT:
            _DOTTED[name] = split
    return split


def flatten(document: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted (name, leaf) pairs of a nested object; lists and scalars are leaves."""
    if not isinstance(document, dict) or (prefix and not document):
        return [(prefix, document)]
    pairs: list[tuple[str, Any]] = []
    for key, value in document.items():
        pairs.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return pairs


def json_body(document: Any) -> bytes:
    """Compact UTF-8 JSON, decimals exact.

    A document of JSON's own values, decimals and finite floats (nearly every body) is written
    by orjson, each decimal digit for digit; anything else, or what orjson refuses (an integer
    past 64 bits, a lone surrogate), by `json_text`, which writes it or says why it cannot.
    (A float is the same number either way: orjson writes `0.00001` where repr has `1e-05`.)
    """
    if _plain(document):
        try:
            written = orjson.dumps(document, default=_exact_decimal)
        except orjson.JSONEncodeError:
            pass
        else:  # a copy of its size: orjson's own holds ~4 KiB for as long as the pair is in flight
            return memoryview(written).tobytes()
    return json_text(document).encode("utf-8")


_SCALARS = frozenset({str, int, bool, type(None), Decimal})


def _plain(value: Any) -> bool:
    """Whether orjson writes `value` as `json_text` does: dicts and lists of scalars, decimals
    and finite floats (orjson would write NaN as null, and dates, enums and UUIDs its own way)."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind in _SCALARS or (kind is float and math.isfinite(value))
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not math.isfinite(item):
                return False
        elif (kind is not dict and kind is not list) or not _plain(item):
            return False
    return True


def _exact_decimal(value: Any) -> orjson.Fragment:
    if type(value) is Decimal:
        return orjson.Fragment(decimal_text(to_decimal(value)))
    raise TypeError  # not reached for a `_plain` document


def csv_body(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[Any]],
    delimiter: str,
    *,
    escape_formulas: bool = False,
) -> bytes:
    """RFC 4180 CSV: CRLF line ends, fields with the delimiter, quotes or line breaks quoted.

    `escape_formulas` prefixes `'` to every text (header names included) that a spreadsheet would
    run as a formula; numbers stay numbers (-5 is no formula)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    cell = _escaped if escape_formulas else text_of
    if header is not None:
        writer.writerow([cell(name) for name in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue().encode("utf-8")


def _escaped(value: Any) -> str:
    text = text_of(value)
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    return f"'{text}" if not number and text.startswith(FORMULA_STARTS) else text


def csv_table(data: Any) -> tuple[list[str] | None, list[list[Any]]]:
    """The header and rows that raw data stands for (an object, a list of objects or of rows)."""
    if isinstance(data, dict):
        pairs = flatten(data)
        return [name for name, _ in pairs], [[value for _, value in pairs]]
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        flat = [dict(flatten(item)) for item in data]
        header = list(dict.fromkeys(name for row in flat for name in row))
        return header, [[row.get(name) for name in header] for row in flat]
    if isinstance(data, list):
        return None, [item if isinstance(item, list) else [item] for item in data]
    return None, [[data]]


def form_body(pairs: Pairs, required: Collection[str] = ()) -> bytes:
    """application/x-www-form-urlencoded; a list value repeats its key (`to=a&to=b`), so an
    empty one leaves it out, but for a `required` name: that is written empty (`to=`), as a
    null is, and as json, csv and xml write an empty list, never silently absent."""
    flat: list[tuple[str, str]] = []
    for name, value in pairs:
        values = value if isinstance(value, list) else [value]
        if not values and name in required:
            values = [""]
        flat.extend((name, text_of(item)) for item in values)
    return urlencode(flat, encoding="utf-8").encode("ascii")


def form_pairs(data: Any) -> list[tuple[str, Any]]:
    """The form pairs raw data stands for; ValueError unless it is an object."""
    if not isinstance(data, dict):
        raise ValueError(f"form needs the event data to be an object, not {_kind(data)}")
    return flatten(data)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
