"""A stop given a deadline waits for the trace collector no longer than that."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from dispatcher import tracing
from dispatcher.devtools.otlp import TRACES, exporting_to
from dispatcher.devtools.receiver import Behaviour, Receiver

JOIN_AT_MOST = 20.0  # the stop is waited for this long: the SDK alone waits 30 s, or 2x this


@pytest.mark.parametrize("given", [True, False], ids=["a-worker's-deadline", "none-given"])
def test_a_collector_that_never_answers_costs_a_stop_no_more_than_its_deadline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, given: bool
) -> None:
    """A worker gives its stop deadline; the admin service and `replay` give none, and wait
    `STOP_SECONDS` (they waited as long as the SDK did: 30 s and more)."""
    monkeypatch.setattr(tracing, "STOP_SECONDS", 0.5)
    answer = threading.Event()  # the collector takes the export request and holds it open
    collector = Receiver({TRACES: Behaviour(body=b"", release=answer)})
    with collector:
        for name, value in exporting_to(collector).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", str(2 * JOIN_AT_MOST))
        provider = tracing.start("worker")
        assert provider is not None
        for name in ("one", "two", "three"):
            with provider.get_tracer(__name__).start_as_current_span(name):
                pass
        deadline = (time.monotonic() + 0.5,) if given else ()
        stop = threading.Thread(target=tracing.stop, args=(provider, *deadline), daemon=True)
        with caplog.at_level(logging.INFO, logger="dispatcher.tracing"):
            stop.start()
            stop.join(JOIN_AT_MOST)
            stopped = not stop.is_alive()
        answer.set()  # lets the export left behind end
        asked = len(collector.received(TRACES))

    assert stopped
    assert asked == 1  # the collector was reached, and did not answer
    said = [r for r in caplog.records if r.name == "dispatcher.tracing"]
    assert [r.getMessage() for r in said] == [
        "tracing: 3 spans not exported by the stop deadline (the trace collector did not"
        " answer in time): dropped"
    ]
    assert [r for r in caplog.records if r.exc_info] == []  # a line, never a traceback
