"""What the command line shows: pure text from values."""

from __future__ import annotations

import dataclasses
import json

from rich.console import Console

from dispatcher.cli.output import (
    COLUMNS,
    hook_table,
    hook_yaml,
    plan_lines,
    plan_table,
    summary_line,
    unusable_text,
)
from dispatcher.hooks.definitions import unloadable
from dispatcher.hooks.loader import load_hooks_text
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Record
from dispatcher.model.health import Decision
from dispatcher.model.hook import Hook
from dispatcher.ops.replay.plan import Plan, Summary, plan
from dispatcher.pipeline.match import HookIndex


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
    tax = Hook.from_dict({"id": "tax", "events": ["order.*"], "url": "https://a.example/"})
    text = _shown(plan([_letter(7, json.dumps(event).encode())], set(), HookIndex([tax])))
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


def test_dry_run_shows_an_events_id_and_type_as_they_are_never_as_markup() -> None:
    """An event id `[/oops]` (a producer's own) ended the dry run of its hook in a traceback
    (rich's MarkupError); `[bold]...` would have been shown as something else than it is."""
    event = {"specversion": "1.0", "id": "[/oops]", "type": "[green]paid", "source": "/s"}
    tax = Hook.from_dict({"id": "tax", "events": ["*"], "url": "https://a.example/"})
    text = _shown(plan([_letter(7, json.dumps(event).encode())], set(), HookIndex([tax])))
    [row] = [line for line in text.splitlines() if "dlq/0/7" in line]
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[1:3] == ["[/oops]", "[green]paid"]


def test_dry_run_shows_a_letter_that_is_no_event_with_empty_event_cells() -> None:
    text = _shown(Plan(skip=((_letter(3, b"not json"), "no hook"),)))
    [row] = [line for line in text.splitlines() if "dlq/0/3" in line]
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[2:4] == ["", ""]  # no event id, no event type
    assert "no hook" in row


def test_a_replay_stopped_before_its_end_says_how_many_letters_it_left_for_the_next_run() -> None:
    done = Summary(selected=9, delivered=5, failed=1, skipped=3)
    stopped = Summary(selected=9, delivered=2, failed=1, skipped=3, stopped=True)
    assert summary_line(done) == "selected 9, delivered 5, failed again 1, skipped 3"
    assert summary_line(stopped) == (
        "selected 9, delivered 2, failed again 1, skipped 3;"
        " stopped: 3 not sent, left for the next run"
    )


HOOKS = """\
hooks:
  - id: crm
    events: [customer.*]
    url: https://crm.example.test/hooks
  - id: erp
    events: [order.*]
    url: https://erp.example.test/in
"""
SINCE = 1_796_000_000.0  # 2026-11-30T00:53:20Z
PAUSED = Decision("crm", "paused", since=SINCE, at=SINCE, reason="manual", last_error="x\ny")


def _hooks() -> list[Hook]:
    return load_hooks_text(HOOKS, "hooks.yaml")


def test_hooks_list_shows_a_health_column_when_a_hook_is_paused_or_failing() -> None:
    failing = Decision("erp", "failing", since=SINCE, at=SINCE, last_error="HTTP 503")
    rows = hook_table(_hooks(), {"crm": PAUSED, "erp": failing}).splitlines()
    assert rows[0].split()[:4] == ["ID", "TENANT", "ENABLED", "HEALTH"]
    assert rows[1].split()[:4] == ["crm", "-", "yes", "paused"]
    assert rows[2].split()[:4] == ["erp", "-", "yes", "failing"]


def test_hooks_list_says_nothing_extra_without_a_pause_or_failure() -> None:
    resumed = Decision("crm", "resumed", since=SINCE, at=SINCE + 60, reason="manual")
    healthy = Decision("erp", "healthy", since=SINCE, at=SINCE)
    plain = hook_table(_hooks())
    assert "HEALTH" not in plain
    assert hook_table(_hooks(), {}) == plain
    assert hook_table(_hooks(), {"crm": resumed, "erp": healthy}) == plain


def test_a_healthy_hook_beside_a_paused_one_shows_a_dash() -> None:
    rows = hook_table(_hooks(), {"crm": PAUSED}).splitlines()
    assert rows[2].split()[:4] == ["erp", "-", "yes", "-"]


def test_hooks_show_names_the_pause_in_comment_lines_before_the_yaml() -> None:
    crm = _hooks()[0]
    shown = hook_yaml(crm, PAUSED)
    lines = shown.splitlines()
    assert lines[0] == "# paused by hand since 2026-11-30T00:53:20.000Z"
    assert lines[1] == "# last error: x y"  # one line, whatever the error held
    assert shown.endswith(hook_yaml(crm))
    auto = Decision("crm", "paused", since=SINCE, at=SINCE, reason="auto")
    assert hook_yaml(crm, auto).splitlines()[0].startswith("# paused after failing since ")
    assert hook_yaml(crm, Decision("crm", "resumed", SINCE, SINCE)) == hook_yaml(crm)
    assert hook_yaml(crm, None) == hook_yaml(crm)


def _unusable() -> list[Hook]:
    """A stand-in (its stored definition did not load) and a definition that loaded but cannot
    run (queue mode, ordered by key), beside a usable hook."""
    reference = "${env:DISPATCHER_SECRET_ERP_TOKEN}"
    stand_in = unloadable(
        "erp",
        json.dumps({"id": "erp", "events": ["order.*"], "tenant": "acme"}).encode(),
        f"hooks[0].auth.token: cannot resolve secret {reference}:\nnot set",
    )
    ledger = dataclasses.replace(_hooks()[0], id="ledger", unusable="no order in queue mode")
    return [_hooks()[0], stand_in, ledger]


def test_hooks_list_marks_an_unusable_hook_and_says_why_below_the_table() -> None:
    hooks = _unusable()
    rows = hook_table(hooks).splitlines()
    assert rows[0].split() == ["ID", "TENANT", "ENABLED", "HEALTH", *COLUMNS[3:]]
    assert rows[1].split()[:4] == ["crm", "-", "yes", "-"]
    # a stand-in has no URL, method or format of its own: none is made up
    assert rows[2].split() == ["erp", "acme", "yes", "unusable", "order.*", "-", "-", "-", "-"]
    assert rows[3].split()[:4] == ["ledger", "-", "yes", "unusable"]
    assert rows[3].split()[-1] == "https://crm.example.test/hooks"
    # unusable whatever its health: its pairs are dead-lettered as config before any pause
    paused = Decision("ledger", "paused", since=SINCE, at=SINCE, reason="manual")
    assert hook_table(hooks, {"ledger": paused}) == hook_table(hooks)
    notes = unusable_text(hooks).splitlines()
    assert notes == [
        "erp is unusable: its events are dead-lettered with error kind config, no request made:"
        " its stored definition does not load on this worker: hooks[0].auth.token: cannot"
        " resolve secret ${env:DISPATCHER_SECRET_ERP_TOKEN}: not set",
        "ledger is unusable: its events are dead-lettered with error kind config, no request"
        " made: no order in queue mode",
    ]
    assert unusable_text(_hooks()) == ""


def test_hooks_show_names_an_unusable_hook_and_why_in_comment_lines_before_what_it_holds() -> None:
    _crm, stand_in, ledger = _unusable()
    lines = hook_yaml(stand_in).splitlines()
    assert lines[0] == (
        "# unusable: its events are dead-lettered with error kind config, no request made"
    )
    assert lines[1].startswith("# why: its stored definition does not load on this worker: ")
    assert lines[2:] == ["id: erp", "events: [order.*]", "tenant: acme", "enabled: true"]
    shown = hook_yaml(ledger, PAUSED)
    assert shown.splitlines()[1] == "# why: no order in queue mode"
    assert shown.splitlines()[2].startswith("# paused by hand since ")
    assert "url: https://crm.example.test/hooks" in shown  # a definition that loaded: whole


def test_a_plans_lines_write_what_a_terminal_would_act_on_as_escapes() -> None:
    event = {"specversion": "1.0", "id": "a\tb\nc", "type": "\x1b[31mpaid", "source": "/s"}
    tax = Hook.from_dict({"id": "tax", "events": ["*"], "url": "https://a.example/"})
    the_plan = plan([_letter(7, json.dumps(event).encode())], set(), HookIndex([tax]))
    _header, line = plan_lines(the_plan)
    assert line.split("\t")[1:3] == ["a\\tb\\nc", "\\x1b[31mpaid"]
    [row] = [line for line in _shown(the_plan).splitlines() if "dlq/0/7" in line]
    assert "\\x1b[31mpaid" in row
