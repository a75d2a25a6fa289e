"""librdkafka's repeated lines are counted, not logged each time."""

from __future__ import annotations

import logging

from dispatcher.logs import Repeats

REFUSED = "FAIL [rdkafka#consumer-3] [thrd:b/bootstrap]: Connect failed: Connection refused (after %dms in state CONNECT)"


def line(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("dispatcher.librdkafka", level, __file__, 1, message, args, None)


def test_a_line_repeated_within_the_window_is_let_through_once_then_counted() -> None:
    now = [0.0]
    repeats = Repeats(30.0, clock=lambda: now[0])
    passed = []
    for second in range(0, 61):  # a reconnect a second, for a minute
        now[0] = float(second)
        record = line(REFUSED, second % 3)  # its timing differs from line to line
        if repeats.filter(record):
            passed.append(record.getMessage())
    assert len(passed) == 3  # at 0 s, 30 s and 60 s
    assert "more like it" not in passed[0]
    assert passed[1].endswith("(29 more like it since the last one logged)")
    assert passed[2].endswith("(29 more like it since the last one logged)")


def test_different_lines_and_debug_lines_all_pass() -> None:
    repeats = Repeats(30.0, clock=lambda: 0.0)
    assert repeats.filter(line(REFUSED, 0))
    assert repeats.filter(line("FAIL [rdkafka#consumer-4] [thrd:b/bootstrap]: other"))
    assert repeats.filter(line(REFUSED, 0, level=logging.WARNING))  # another level: another line
    assert all(repeats.filter(line("FETCH ...", level=logging.DEBUG)) for _ in range(3))
    assert not repeats.filter(line(REFUSED, 0))
