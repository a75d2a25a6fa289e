"""Parse the human durations and rates used in configuration ("30s", "5m", "20/s")."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration such as `10s`, `5m`, `1.5h`, `250ms` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 10s, 5m, 1h)")
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


def parse_rate(value: str | int | float) -> float:
    """Events per second in a rate such as `20/s`, `600/m` or a plain number per second."""
    if isinstance(value, bool):
        raise ValueError(f"not a rate: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _RATE.match(value)
    if match is None:
        raise ValueError(f"not a rate: {value!r} (use e.g. 20/s, 600/m)")
    number, unit = match.groups()
    return float(number) / _UNITS[unit]


def format_duration(seconds: float) -> str:
    """The short name of a duration, as used in retry tier topic names (30s, 5m, 1h)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
