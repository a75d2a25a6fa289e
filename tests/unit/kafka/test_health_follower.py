"""The health topic as a worker follows it: reports by key, decisions by hook, and a stopped
worker's reports gone with the tombstone it writes on its way out."""

from __future__ import annotations

from dispatcher.config.settings import Settings
from dispatcher.kafka.health import HealthFollower
from dispatcher.model.event import Record
from dispatcher.model.health import Decision, Report, encode


def _record(key: str, value: bytes | None, offset: int) -> Record:
    return Record("dugaa.dispatch.health", 0, offset, key.encode(), value, ())


def test_a_stopped_workers_tombstone_withdraws_its_report_and_leaves_the_others() -> None:
    follower = HealthFollower(Settings())
    gone = Report("crm", "worker-a", at=100.0, last_failure=99.0, failing_since=90.0)
    staying = Report("crm", "worker-b", at=100.0, last_success=99.5)
    paused = Decision("crm", "paused", since=90.0, at=100.0, reason="manual")
    follower._apply(
        [
            _record(gone.key, encode(gone), 0),
            _record(staying.key, encode(staying), 1),
            _record(paused.key, encode(paused), 2),
        ]
    )
    assert sorted(r.worker for r in follower.reports()) == ["worker-a", "worker-b"]

    follower._apply([_record(gone.key, None, 3)])  # what `withdraw` writes as a worker stops

    assert follower.reports() == [staying]
    assert follower.decisions() == {"crm": paused}
