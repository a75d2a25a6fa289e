"""Moments in time as every record and document writes them: ISO 8601 in UTC with milliseconds
and a Z (`2026-11-29T19:31:00.123Z`), or epoch milliseconds for Avro's timestamp-millis."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

Moment = datetime | str | float


def moment(value: Moment) -> datetime:
    """A time given as an aware `datetime` (naive ones are UTC), ISO 8601 text or epoch seconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return moment(datetime.fromisoformat(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    raise ValueError(f"not a time: {value!r}")


def iso(value: Moment) -> str:
    """ISO 8601 in UTC with milliseconds and a Z."""
    if isinstance(value, float | int) and not isinstance(value, bool) and value >= 0:
        return _iso_epoch(value)
    if isinstance(value, str) and _is_iso(value):
        return value  # already so (a result's times are given once more on their way out)
    utc = moment(value).astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_SECONDS_KEPT = 16
_seconds: dict[int, str] = {}  # recent whole seconds written, as their text up to the "."


def _iso_epoch(seconds: float) -> str:
    """`iso` of epoch seconds, without a datetime: every record written pays for it (a third
    of an attempt record's cost). Rounded to the microsecond, then cut to the millisecond,
    exactly as `datetime.fromtimestamp(...).isoformat(timespec="milliseconds")` does. The
    text of the last few whole seconds is kept (1.1 -> 0.45 us a call): a result's first
    attempt is often a second or more before its end (a backlog waits for the hook's
    slots), and with only the last second kept, the calls of a backlog went back and forth
    between two seconds and formatted one again on most of them."""
    whole = math.floor(seconds)
    micros = round((seconds - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    text = _seconds.get(whole)
    if text is None:  # another thread may do the same meanwhile: it writes the same text
        if len(_seconds) >= _SECONDS_KEPT:
            _seconds.clear()
        text = _seconds[whole] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
    return f"{text}{micros // 1000:03d}Z"


def _is_iso(text: str) -> bool:
    """Whether `text` is a valid time written as `iso` writes it: YYYY-MM-DDTHH:MM:SS.mmmZ."""
    if len(text) != 24 or text[10] != "T" or text[19] != "." or text[23] != "Z":
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def epoch_millis(value: Moment) -> int:
    """Milliseconds since the epoch, as Avro's timestamp-millis holds them."""
    return round(moment(value).timestamp() * 1000)


def parse_iso(text: str) -> float | None:
    """Epoch seconds from ISO 8601 text (a time without a zone is UTC); None when it is not one."""
    if not text:
        return None
    try:
        return moment(text.strip()).timestamp()
    except ValueError:
        return None
