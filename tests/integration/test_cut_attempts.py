"""Requests cut short on the real broker: a worker stopped (SIGTERM) while its requests hang
past `drain_timeout` leaves one attempt record per request it cut, saying so (`cut`), with no
answer, no secret and no outcome, in group mode and in queue mode alike."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook, stop
from kafka_support import wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver

TOKEN = "cut-bearer-3f7a-secret"
EVENTS = 3


@pytest.mark.timeout(240)
@pytest.mark.parametrize("consume", ["group", "share"])
def test_requests_cut_at_the_drain_deadline_each_leave_an_attempt_record_saying_so(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, consume: str
) -> None:
    monkeypatch.setenv("CUT_TOKEN", TOKEN)
    with Receiver() as receiver:
        receiver.responder = lambda _request: Behaviour(hang=True)
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook(
                    "erp",
                    f"{receiver.url}/hang?apikey={TOKEN}",
                    ["order.paid"],
                    auth={"type": "bearer", "token": "${env:CUT_TOKEN}"},
                    timeout="60s",  # the drain deadline comes first
                )
            ],
            extra=_extra(consume),
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(EVENTS)]
        worker = deployment.process()
        deployment.produce_events(events)
        wait_for(lambda: len(receiver.received()) >= EVENTS, 90, message="every request under way")
        assert stop(worker, signal.SIGTERM, timeout=60) == 0
        records = collect_until(
            kafka_bootstrap, deployment.attempts, lambda rs: len(rs) >= EVENTS, 30
        )

    attempts = [r.json() for r in records]
    assert sorted(a["event_id"] for a in attempts) == sorted(e["id"] for e in events)
    assert {r.key for r in records} == {e["id"].encode() for e in events}
    for attempt in attempts:
        assert attempt["hook_id"] == "erp"
        assert attempt["attempt"] == 1
        assert attempt["error_kind"] == "cut"
        assert "cut short" in attempt["error"]
        assert (attempt["http_status"], attempt["response_excerpt"]) == (None, None)
        assert attempt["latency_ms"] > 0  # from sending to the cut
    for record in records:
        text = record.value.decode()
        assert TOKEN not in text
        assert "apikey" not in text  # no URL
        assert '"i"' not in text  # no body
    assert deployment.written(deployment.results) == 0  # a cut pair has no outcome here
    assert deployment.written(deployment.dead_letter) == 0


def _extra(consume: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"drain_timeout": "1s", "local_retries": 0}
    if consume == "share":
        extra["consume"] = "share"
    return extra
