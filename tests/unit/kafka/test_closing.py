"""A consumer's close is waited for only so long."""

from __future__ import annotations

import logging
import threading

import pytest

from dispatcher.kafka.closing import close_within


def test_a_close_that_finishes_is_waited_for() -> None:
    closed = threading.Event()
    assert close_within(closed.set, 10, "the consumer of events")
    assert closed.is_set()


def test_a_close_that_hangs_is_left_behind_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    try:
        with caplog.at_level(logging.WARNING, "dispatcher.kafka.closing"):
            assert not close_within(release.wait, 0.05, "the consumer of events")
    finally:
        release.set()  # the thread left behind ends with the test
    assert "the consumer of events did not close" in caplog.text
    assert "will be redelivered" in caplog.text


def test_a_close_that_fails_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def close() -> None:
        raise RuntimeError("coordinator gone")

    with caplog.at_level(logging.ERROR, "dispatcher.kafka.closing"):
        assert close_within(close, 10, "the consumer of events")
    assert "closing the consumer of events failed" in caplog.text
    assert "coordinator gone" in caplog.text
