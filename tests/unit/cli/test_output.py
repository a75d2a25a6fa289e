"""What the command line shows: pure text from values."""

from __future__ import annotations

import json

from rich.console import Console

from dispatcher.cli.output import plan_table
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Record
from dispatcher.ops.replay.plan import Plan


def _letter(offset: int, value: bytes) -> DeadLetter:
    headers = (
        ("content-type", b"application/cloudevents+json"),
        ("dispatcher.hook.id", b"tax"),
        ("dispatcher.error.kind", b"http_status"),
        ("dispatcher.idempotency.key", f"msg_{offset}".encode()),
        ("dispatcher.failed.at", b"2026-11-29T10:00:00.000Z"),
    )
    return DeadLetter.from_record(Record("dlq", 0, offset, None, value, headers))


def _shown(plan: Plan) -> str:
    console = Console(width=400, record=True)
    console.print(plan_table(plan))
    return console.export_text()


def test_dry_run_lists_event_id_type_hook_error_kind_failure_time_and_webhook_id() -> None:
    event = {"specversion": "1.0", "id": "ev-42", "type": "order.paid", "source": "/s", "data": {}}
    text = _shown(Plan(send=(_letter(7, json.dumps(event).encode()),)))
    [row] = [line for line in text.splitlines() if "dlq/0/7" in line]
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells == [
        "dlq/0/7",
        "ev-42",
        "order.paid",
        "tax",
        "http_status",
        "2026-11-29T10:00:00.000Z",
        "msg_7",
        "would send",
    ]


def test_dry_run_shows_a_letter_that_is_no_event_with_empty_event_cells() -> None:
    text = _shown(Plan(skip=((_letter(3, b"not json"), "no hook"),)))
    [row] = [line for line in text.splitlines() if "dlq/0/3" in line]
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[2:4] == ["", ""]  # no event id, no event type
    assert "no hook" in row
