"""The one timestamp format: epoch seconds written without a datetime read exactly as with one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.model import moments
from dispatcher.model.moments import iso


def by_datetime(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@pytest.mark.parametrize(
    "seconds", [0, 0.0, 1.0005, 1.9995, 1.9999994, 1.9999995, 1_793_611_800.25, 2**31, 4e9 + 0.5]
)
def test_epoch_seconds_are_written_as_datetime_writes_them(seconds: float) -> None:
    assert iso(seconds) == by_datetime(seconds)


def test_random_epoch_seconds_are_written_as_datetime_writes_them() -> None:
    rng = random.Random(20)
    for _ in range(20_000):
        seconds = rng.choice([rng.uniform(0, 4e9), rng.randrange(4_000_000_000_000) / 1000])
        assert iso(seconds) == by_datetime(seconds), seconds


def test_times_close_together_are_written_as_datetime_writes_them() -> None:
    # runs within one second, across second boundaries, and back and forth between seconds
    rng = random.Random(21)
    start = 1_793_611_799.0
    steps = [start + i * 0.0003 for i in range(10_000)]
    steps += [start + rng.choice([0.9999996, 1.0000004, 0.5, 1.5, 2.9999995]) for _ in range(2_000)]
    for seconds in steps:
        assert iso(seconds) == by_datetime(seconds), seconds


def test_the_seconds_kept_for_writing_stay_few() -> None:
    for second in range(1_793_611_800, 1_793_611_800 + 1000):
        iso(second + 0.5)
    assert 0 < len(moments._seconds) <= moments._SECONDS_KEPT


def test_other_moments_keep_their_form() -> None:
    assert iso("2026-11-29T19:31:00.123456+03:00") == "2026-11-29T16:31:00.123Z"
    assert iso(datetime(2026, 11, 29, 19, 31, tzinfo=UTC)) == "2026-11-29T19:31:00.000Z"


T = datetime(2026, 11, 29, 19, 31, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "given",
    [
        T,
        T.timestamp(),
        "2026-11-29T19:31:00.123Z",
        "2026-11-29T19:31:00.123456Z",
        "2026-11-29 19:31:00.123Z",
        "2026-11-29T19:31:00,123Z",
        "2026-11-29T22:31:00.123+03:00",
        T.astimezone(timezone(timedelta(hours=3))),
    ],
)
def test_every_form_of_a_moment_is_written_the_one_way(given: datetime | str | float) -> None:
    assert iso(given) == "2026-11-29T19:31:00.123Z"


def test_a_time_already_written_that_way_is_kept_as_it_is() -> None:
    assert iso("1999-12-31T23:59:59.999Z") == "1999-12-31T23:59:59.999Z"


@pytest.mark.parametrize("text", ["2026-13-29T19:31:00.123Z", "2026-02-30T19:31:00.123Z", "soon"])
def test_a_text_that_is_no_time_is_refused_even_in_the_written_shape(text: str) -> None:
    with pytest.raises(ValueError):
        iso(text)
