"""Moments as every record writes them: ISO 8601 in UTC, milliseconds, a Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.model.moments import iso

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
