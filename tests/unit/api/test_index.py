"""The SQLite index: rows and offsets in one transaction, look-ups, and bounded retention."""

from __future__ import annotations

from pathlib import Path

from dispatcher.api.index.database import Index
from dispatcher.api.index.rows import LetterRow, ResultRow


def result(
    n: int, *, hook: str = "crm", outcome: str = "delivered", at: float = 1000.0
) -> ResultRow:
    return ResultRow(
        event_id=f"e{n}",
        event_type="order.paid",
        hook_id=hook,
        outcome=outcome,
        attempts=1,
        http_status=200 if outcome == "delivered" else 500,
        latency_ms=3.0,
        error_kind=None if outcome == "delivered" else "http_status",
        error=None if outcome == "delivered" else "500 Internal Server Error",
        idempotency_key=f"msg_{hook}_{n}",
        completed_at=at + n,
        where=f"results-{hook}/0/{n}",
    )


def letter(n: int, *, hook: str = "tax", at: float = 1000.0) -> LetterRow:
    return LetterRow(
        where=f"dlq/0/{n}",
        hook_id=hook,
        error_kind="http_status",
        error="500",
        http_status=500,
        attempts=3,
        idempotency_key=f"msg_{hook}_{n}",
        event_id=f"e{n}",
        event_type="order.paid",
        failed_at=at + n,
        replayed_from="",
    )


def test_rows_and_offsets_are_kept_and_survive_a_reopen(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add([result(1), result(2)], [letter(1)], {("results", 0): 2, ("dlq", 0): 1})
    index.add([result(2)], [], {("results", 0): 3})  # a record read twice is one row
    index.close()
    again = Index(tmp_path / "i.sqlite3")
    assert again.positions("results") == {0: 3}
    assert again.positions("dlq") == {0: 1}
    assert [r["event_id"] for r in again.outcomes("crm")] == ["e2", "e1"]
    again.close()


def test_outcomes_filter_by_status_and_time(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    rows = [result(1), result(2, outcome="dead_lettered"), result(3)]
    index.add(rows, [], {("results", 0): 3})
    assert [r["event_id"] for r in index.outcomes("crm", outcome="delivered")] == ["e3", "e1"]
    assert [r["event_id"] for r in index.outcomes("crm", since=1002, until=1002)] == ["e2"]
    assert index.outcomes("crm", limit=1)[0]["event_id"] == "e3"
    assert index.outcomes("other") == []


def test_an_event_is_found_with_its_outcomes_and_dead_letters(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add([result(1), result(1, hook="tax", outcome="dead_lettered")], [letter(1)], {})
    outcomes, letters = index.event("e1")
    assert {(o["hook_id"], o["outcome"]) for o in outcomes} == {
        ("crm", "delivered"),
        ("tax", "dead_lettered"),
    }
    assert [d["where"] for d in letters] == ["dlq/0/1"]


def test_dead_letters_group_by_hook_and_kind_and_health_sums_the_last_hour(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add(
        [result(1), result(2, outcome="dead_lettered"), result(3)],
        [letter(1), letter(2), letter(3, hook="sms")],
        {},
    )
    groups = {(g["hook_id"], g["error_kind"]): g["count"] for g in index.letter_groups()}
    assert groups == {("sms", "http_status"): 1, ("tax", "http_status"): 2}
    assert index.letter_groups(since=1003) == [
        {"hook_id": "sms", "error_kind": "http_status", "count": 1, "last": 1003.0}
    ]
    health = index.health(since=0)["crm"]
    assert (health["total"], health["failed"], health["last_success"]) == (3, 1, 1003.0)
    assert health["last_error"] == "500 Internal Server Error"


def test_retention_drops_rows_by_age_and_by_count(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add([result(n) for n in range(10)], [letter(n) for n in range(10)], {})
    assert index.prune(older_than=1005, keep=100) == 10
    assert len(index.outcomes("crm", limit=100)) == 5
    assert index.prune(older_than=0, keep=2) == 6
    assert [r["event_id"] for r in index.outcomes("crm", limit=100)] == ["e9", "e8"]
    assert len(index.letters(None, None)) == 2
