"""Judging a response: success statuses, redirects, retryable and permanent failures, Retry-After."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline.judge import MAX_RETRY_AFTER, judge, retry_after

ANY_2XX = ResponseSpec()
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC).timestamp()


def verdict(status: int, spec: ResponseSpec = ANY_2XX, body: bytes = b"", **headers: str):  # type: ignore[no-untyped-def]
    return judge(spec, status, httpx.Headers(headers), body, now=NOW)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_a_success_by_default(status: int) -> None:
    v = verdict(status)

    assert v.ok
    assert v.kind is None
    assert v.status == status
    assert v.error is None


def test_only_the_listed_success_statuses_succeed_when_given() -> None:
    spec = ResponseSpec.from_dict({"success_status": [200, 202]})

    assert verdict(202, spec).ok
    refused = verdict(201, spec)
    assert not refused.ok
    assert refused.kind == "http_status"
    assert not refused.retryable


def test_a_listed_non_2xx_status_counts_as_success() -> None:
    assert verdict(409, ResponseSpec.from_dict({"success_status": [200, 409]})).ok


@pytest.mark.parametrize("status", [301, 302, 303, 304, 307, 308])
def test_a_redirect_is_a_permanent_failure_that_says_so(status: int) -> None:
    v = verdict(status, location="https://elsewhere.example.com")

    assert not v.ok
    assert v.kind == "http_status"
    assert not v.retryable
    assert v.status == status
    assert "redirect" in (v.error or "")


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_server_errors_are_retryable(status: int) -> None:
    v = verdict(status)

    assert not v.ok
    assert v.kind == "http_status"
    assert v.retryable
    assert v.status == status
    assert str(status) in (v.error or "")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451])
def test_other_4xx_are_permanent(status: int) -> None:
    v = verdict(status)

    assert not v.ok
    assert v.kind == "http_status"
    assert not v.retryable


def test_retry_after_in_seconds_is_read() -> None:
    assert verdict(429, **{"Retry-After": "120"}).retry_after == 120.0
    assert verdict(503, **{"retry-after": " 0 "}).retry_after == 0.0


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 90, tz=UTC), usegmt=True)

    assert verdict(503, **{"Retry-After": when}).retry_after == pytest.approx(90.0)


def test_retry_after_in_the_past_means_no_wait() -> None:
    when = "Mon, 02 Nov 2026 09:00:00 GMT"

    assert verdict(503, **{"Retry-After": when}).retry_after == 0.0


@pytest.mark.parametrize(
    "when",
    [
        "Mon Nov  2 09:31:30 2026",  # asctime: RFC 9110's third form, no zone written
        "Mon, 02 Nov 2026 09:31:30 -0000",
        "Mon, 02 Nov 2026 09:31:30 GMT",
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_an_http_date_is_read_as_utc_whatever_the_workers_time_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str, when: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert retry_after(when, NOW) == pytest.approx(90.0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_retry_after_is_capped() -> None:
    assert verdict(429, **{"Retry-After": "999999"}).retry_after == MAX_RETRY_AFTER
    far = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert retry_after(far, NOW) == MAX_RETRY_AFTER


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_an_absent_or_unreadable_retry_after_is_none(value: str | None) -> None:
    assert retry_after(value, NOW) is None


def test_retry_after_is_ignored_on_a_permanent_failure() -> None:
    assert verdict(400, **{"Retry-After": "30"}).retry_after is None


def test_a_failed_expectation_fails_a_2xx_with_the_captured_values() -> None:
    spec = ResponseSpec.from_dict(
        {"expect": [{"path": "status", "equals": "ok"}], "capture": {"ref": "id"}}
    )

    v = verdict(200, spec, b'{"status": "error", "id": "m-9"}')

    assert not v.ok
    assert v.kind == "response_invalid"
    assert v.status == 200
    assert v.captured == {"ref": "m-9"}
    assert "status" in (v.error or "")


@pytest.mark.parametrize(
    "body", [b'{"status": "rejected", "reason": "invalid phone"}', b"not json", b'{"s": 1}']
)
def test_an_accepted_answer_that_fails_its_checks_is_never_sent_again(body: bytes) -> None:
    # CONTRACT section 4: only network errors, timeouts, 408, 425, 429 and 5xx are retried;
    # a 200 that says "rejected" was taken by the third party, and a second POST repeats it
    spec = ResponseSpec.from_dict({"expect": [{"path": "status", "equals": "ok"}]})

    v = verdict(200, spec, body, **{"Retry-After": "30"})

    assert (v.ok, v.kind, v.retryable, v.retry_after) == (False, "response_invalid", False, None)


def test_a_success_carries_the_captured_values() -> None:
    spec = ResponseSpec.from_dict(
        {"expect": [{"path": "status", "equals": "ok"}], "capture": {"ref": "data.id"}}
    )

    v = verdict(201, spec, b'{"status": "ok", "data": {"id": 17}}')

    assert v.ok
    assert v.captured == {"ref": 17}


def test_the_body_is_not_checked_when_the_status_already_failed() -> None:
    spec = ResponseSpec.from_dict({"expect": [{"path": "status", "equals": "ok"}]})

    v = verdict(500, spec, b"not json")

    assert v.kind == "http_status"
    assert v.captured == {}


def test_a_deeply_nested_xml_response_is_judged_response_invalid() -> None:
    spec = ResponseSpec.from_dict({"format": "xml", "expect": [{"path": "ok", "exists": True}]})
    deep = b"<a>" * 5000 + b"</a>" * 5000
    result = verdict(200, spec, deep)
    assert result.kind == "response_invalid"
    assert "nests deeper than 64 levels" in (result.error or "")
