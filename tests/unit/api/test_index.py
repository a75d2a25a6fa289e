"""The SQLite index: rows and offsets in one transaction, look-ups, and bounded retention."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from dispatcher.api.index.database import Index, Visible
from dispatcher.api.index.rows import AttemptRow, LetterRow, ResultRow
from dispatcher.model.attempt import AttemptRecord
from dispatcher.model.event import Record


def result(
    n: int,
    *,
    hook: str = "crm",
    outcome: str = "delivered",
    at: float = 1000.0,
    tenant: str | None = None,
    hook_tenant: str | None = None,
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
        tenant=tenant,
        hook_tenant=hook_tenant,
    )


def letter(
    n: int,
    *,
    hook: str = "tax",
    at: float = 1000.0,
    tenant: str | None = None,
    hook_tenant: str | None = None,
) -> LetterRow:
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
        tenant=tenant,
        hook_tenant=hook_tenant,
    )


def attempt(
    n: int,
    number: int = 1,
    *,
    hook: str = "erp",
    status: int | None = 503,
    kind: str | None = "http_status",
    at: float = 1000.0,
    tenant: str | None = None,
    hook_tenant: str | None = None,
) -> AttemptRow:
    return AttemptRow(
        event_id=f"e{n}",
        hook_id=hook,
        attempt=number,
        idempotency_key=f"msg_{hook}_{n}",
        http_status=status,
        latency_ms=4.0,
        error_kind=kind,
        error=None if kind is None else f"{kind}!",
        response_excerpt="busy" if status else None,
        at=at + n + number / 10,
        where=f"attempts/0/{hook}-{n}-{number}",
        tenant=tenant,
        hook_tenant=hook_tenant,
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


def test_an_event_shows_every_attempt_of_every_hook_in_order(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    tries = [attempt(1, 3, status=200, kind=None), attempt(1, 1), attempt(1, 2), attempt(2)]
    index.add([], [], {("attempts", 0): 4}, [*tries, attempt(1, hook="crm", status=200, kind=None)])

    found = index.attempts_of_event("e1")

    assert [(a["hook_id"], a["attempt"], a["http_status"]) for a in found] == [
        ("crm", 1, 200),
        ("erp", 1, 503),
        ("erp", 2, 503),
        ("erp", 3, 200),
    ]
    assert found[1]["response_excerpt"] == "busy"
    assert index.positions("attempts") == {0: 4}


def test_a_hook_attempts_are_counted_by_status_class(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    rows = [
        attempt(1, status=200, kind=None),
        attempt(2, status=201, kind=None),
        attempt(3, status=302, kind="http_status"),
        attempt(4, status=422, kind="http_status"),
        attempt(5, status=503),
        attempt(6, status=None, kind="timeout"),
        attempt(7, status=None, kind="network"),
        attempt(8, status=200, kind="response_invalid"),
        attempt(9, status=None, kind="blocked"),
        attempt(1, hook="crm", status=500),
    ]
    index.add([], [], {}, rows)

    assert index.status_classes("erp") == {
        "2xx": 3,
        "3xx": 1,
        "4xx": 1,
        "5xx": 1,
        "network": 2,  # a refused destination is no answer either
        "timeout": 1,
    }
    assert index.status_classes("erp", since=1007.0) == {"2xx": 1, "network": 2}
    newest = index.attempts_of_hook("erp", limit=2)
    assert [a["event_id"] for a in newest] == ["e9", "e8"]


def test_a_request_cut_short_is_counted_as_cut_not_as_a_network_failure(tmp_path: Path) -> None:
    """A stopping or rebalancing worker's cut is not the hook's failure: a class of its own."""
    index = Index(tmp_path / "i.sqlite3")
    rows = [attempt(1, status=None, kind="cut"), attempt(2, status=None, kind="network")]
    index.add([], [], {}, rows)

    assert index.status_classes("erp") == {"cut": 1, "network": 1}


def test_retention_drops_attempts_by_age_and_by_count(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add([], [], {}, [attempt(n) for n in range(10)])
    assert index.prune(older_than=1005, keep=100) == 5
    assert index.prune(older_than=0, keep=2) == 3
    assert [a["event_id"] for a in index.attempts_of_hook("erp")] == ["e9", "e8"]


def test_an_attempt_row_is_read_from_its_record_and_other_values_are_skipped() -> None:
    value = AttemptRecord("e1", "erp", 2, "msg_1", 503, 4.0, "http_status", "HTTP 503", "busy",
                          1000.0, "acme").to_json()  # fmt: skip
    row = AttemptRow.from_record(Record("attempts", 1, 9, b"e1", value, ()))
    assert row is not None
    assert (row.attempt, row.response_excerpt, row.tenant) == (2, "busy", "acme")
    assert row.where == "attempts/1/9"
    assert AttemptRow.from_record(Record("attempts", 1, 10, None, b"{}", ())) is None


def test_rows_keep_the_tenant_of_their_record() -> None:
    value = json.dumps(
        {"event_id": "e1", "hook_id": "sms", "outcome": "delivered", "tenant": "acme"}
    ).encode()
    assert ResultRow.from_record(Record("results", 0, 7, None, value, ())).tenant == "acme"  # type: ignore[union-attr]
    headers = (("dispatcher.hook.id", b"sms"), ("dispatcher.tenant", b"acme"))
    assert LetterRow.from_record(Record("dlq", 0, 3, None, b"{}", headers)).tenant == "acme"
    untenanted = json.dumps({"event_id": "e1", "hook_id": "sms"}).encode()
    assert ResultRow.from_record(Record("results", 0, 8, None, untenanted, ())).tenant is None  # type: ignore[union-attr]


def test_rows_keep_the_tenant_their_hook_had_when_the_record_was_written() -> None:
    value = json.dumps(
        {"event_id": "e1", "hook_id": "sms", "tenant": "acme", "hook_tenant": "acme"}
    ).encode()
    row = ResultRow.from_record(Record("results", 0, 7, None, value, ()))
    assert row is not None
    assert (row.tenant, row.hook_tenant) == ("acme", "acme")
    headers = (
        ("dispatcher.hook.id", b"sms"),
        ("dispatcher.tenant", b"acme"),
        ("dispatcher.hook.tenant", b"acme"),
    )
    letter_row = LetterRow.from_record(Record("dlq", 0, 3, None, b"{}", headers))
    assert (letter_row.tenant, letter_row.hook_tenant) == ("acme", "acme")
    attempt_value = AttemptRecord("e1", "sms", 1, "msg_1", 400, 4.0, "http_status", "HTTP 400",
                                  "no", 1000.0, "acme", None, "acme").to_json()  # fmt: skip
    attempt_row = AttemptRow.from_record(Record("attempts", 0, 1, b"e1", attempt_value, ()))
    assert attempt_row is not None
    assert (attempt_row.tenant, attempt_row.hook_tenant) == ("acme", "acme")
    of_every_tenant = json.dumps({"event_id": "e1", "hook_id": "sms", "tenant": "acme"}).encode()
    row = ResultRow.from_record(Record("results", 0, 8, None, of_every_tenant, ()))
    assert row is not None
    assert row.hook_tenant is None
    assert LetterRow.from_record(Record("dlq", 0, 4, None, b"{}", headers[:2])).hook_tenant is None


@pytest.mark.parametrize("version", [1, 2])
def test_a_result_an_earlier_release_wrote_in_avro_is_a_row(version: int) -> None:
    from dispatcher.kafka.avro.schemas import released, write

    schema = released("result")[version - 1]
    fields = {field["name"]: field.get("default") for field in schema.parsed["fields"]}
    fields.update(event_id="e1", event_type="order.paid", hook_id="sms", outcome="delivered")
    fields.update(attempts=1, idempotency_key="msg_1", source_topic="events")
    fields.update(source_partition=0, source_offset=4, first_attempt_at=1000, completed_at=2000)
    if version >= 2:
        fields.update(tenant="acme")

    row = ResultRow.from_record(Record("results", 0, 7, None, write(fields, schema), ()))

    assert row is not None
    assert (row.event_id, row.hook_id, row.outcome, row.completed_at) == (
        "e1",
        "sms",
        "delivered",
        2.0,
    )
    assert (row.tenant, row.hook_tenant) == ("acme" if version >= 2 else None, None)


def test_a_tenant_reads_only_its_tenant_rows_of_its_hooks(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    index.add(
        [
            result(1, hook="acme-sms", tenant="acme", hook_tenant="acme"),
            result(1, hook="everyone", tenant="acme"),  # acme's event to a hook of every tenant
            result(
                2, hook="globex-sms", tenant="globex", hook_tenant="globex", outcome="dead_lettered"
            ),
            replace(
                result(3, hook="acme-sms", tenant="globex", hook_tenant="acme"), where="moved/0/3"
            ),  # another tenant's event
        ],
        [
            letter(1, hook="acme-sms", tenant="acme", hook_tenant="acme"),
            replace(letter(1, hook="everyone", tenant="acme"), where="dlq/0/11"),
            letter(2, hook="globex-sms", tenant="globex", hook_tenant="globex"),
        ],
        {},
    )
    acme = Visible("acme", frozenset({"acme-sms"}))
    assert [(r["hook_id"], r["tenant"]) for r in index.outcomes("acme-sms", visible=acme)] == [
        ("acme-sms", "acme")
    ]
    assert len(index.outcomes("acme-sms")) == 2
    assert index.outcomes("globex-sms", visible=acme) == []
    results, letters = index.event("e1", acme)
    assert [r["hook_id"] for r in results] == ["acme-sms"]
    assert [r["hook_id"] for r in letters] == ["acme-sms"]
    assert index.event("e2", acme) == ([], [])
    assert [g["hook_id"] for g in index.letter_groups(visible=acme)] == ["acme-sms"]
    assert [g["hook_id"] for g in index.letter_groups(since=0.0, visible=acme)] == ["acme-sms"]
    assert [r["hook_id"] for r in index.letters(None, None, visible=acme)] == ["acme-sms"]
    assert index.letters("globex-sms", None, visible=acme) == []
    assert set(index.health(0.0, acme)) == {"acme-sms"}
    assert index.health(0.0, acme)["acme-sms"]["total"] == 1
    assert index.event("e1", Visible("acme", frozenset())) == ([], [])
    index.close()


def test_a_tenant_reads_nothing_its_hook_wrote_before_it_became_the_tenant_hook(
    tmp_path: Path,
) -> None:
    """`audit` served every tenant (hook tenant none), then acme's: what it wrote of acme's
    event before is the operator's, as is a row of a version that wrote no hook tenant."""
    index = Index(tmp_path / "i.sqlite3")
    index.add(
        [
            result(1, hook="audit", tenant="acme", outcome="dead_lettered"),  # the operator's
            result(2, hook="audit", tenant="acme", hook_tenant="acme"),
            result(3, hook="audit", tenant="acme", hook_tenant="globex"),  # once globex's
        ],
        [
            letter(1, hook="audit", tenant="acme"),
            letter(2, hook="audit", tenant="acme", hook_tenant="acme"),
        ],
        {},
        [
            attempt(1, hook="audit", status=400, tenant="acme"),
            attempt(2, hook="audit", status=200, kind=None, tenant="acme", hook_tenant="acme"),
        ],
    )
    acme = Visible("acme", frozenset({"audit"}))
    assert [r["event_id"] for r in index.outcomes("audit", visible=acme)] == ["e2"]
    assert index.event("e1", acme) == ([], [])
    assert index.attempts_of_event("e1", acme) == []
    assert [r["event_id"] for r in index.attempts_of_hook("audit", visible=acme)] == ["e2"]
    assert index.status_classes("audit", visible=acme) == {"2xx": 1}
    assert [r["event_id"] for r in index.letters("audit", None, visible=acme)] == ["e2"]
    assert [g["count"] for g in index.letter_groups(visible=acme)] == [1]
    assert index.health(0.0, acme)["audit"]["total"] == 1
    assert len(index.outcomes("audit")) == 3  # the operator reads them all
    assert len(index.attempts_of_hook("audit")) == 2
    assert len(index.letters("audit", None)) == 2
    index.close()


def test_an_index_of_the_schema_before_tenants_is_read_again_from_the_topics(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        create table results (event_id text, event_type text, hook_id text, outcome text,
            attempts integer, http_status integer, latency_ms real, error_kind text, error text,
            idempotency_key text, completed_at real, "where" text primary key);
        create table letters ("where" text primary key, hook_id text, error_kind text,
            error text, http_status integer, attempts integer, idempotency_key text,
            event_id text, event_type text, failed_at real, replayed_from text);
        create table positions (topic text, partition integer, next integer,
            primary key (topic, partition));
        insert into positions values ('results', 0, 42);
        insert into results ("where", hook_id) values ('results/0/1', 'crm');
        """
    )
    old.close()
    index = Index(path)
    assert index.positions("results") == {}  # no tenant in the old rows: from the start again
    assert index.outcomes("crm") == []
    index.add([result(1, tenant="acme")], [letter(1, tenant="acme")], {("results", 0): 2})
    assert index.outcomes("crm")[0]["tenant"] == "acme"
    index.close()
    again = Index(path)
    assert again.positions("results") == {0: 2}  # the current schema is kept
    again.close()


def test_an_index_of_the_schema_before_hook_tenants_is_read_again_from_the_topics(
    tmp_path: Path,
) -> None:
    """Rows of version 3 know no hook tenant: a tenant could not be told its own from the
    operator's, so the file is filled again from the topics, which say it."""
    path = tmp_path / "i.sqlite3"
    index = Index(path)
    index.add([result(1, tenant="acme")], [], {("results", 0): 2})
    index.close()
    old = sqlite3.connect(path)
    old.executescript(
        """
        alter table results drop column hook_tenant; alter table letters drop column hook_tenant;
        alter table attempts drop column hook_tenant; pragma user_version = 3;
        """
    )
    old.close()
    again = Index(path)
    assert again.positions("results") == {}
    assert again.outcomes("crm") == []
    again.add([result(1, tenant="acme", hook_tenant="acme")], [], {("results", 0): 2})
    assert again.outcomes("crm")[0]["hook_tenant"] == "acme"
    again.close()


def test_rows_keep_the_trace_id_of_their_record(tmp_path: Path) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    value = json.dumps({"event_id": "e1", "hook_id": "sms", "trace_id": trace}).encode()
    row = ResultRow.from_record(Record("results", 0, 7, None, value, ()))
    assert row is not None
    assert row.trace_id == trace
    headers = (("dispatcher.hook.id", b"sms"), ("dispatcher.trace.id", trace.encode()))
    letter_row = LetterRow.from_record(Record("dlq", 0, 3, None, b"{}", headers))
    assert letter_row.trace_id == trace
    untraced = json.dumps({"event_id": "e1", "hook_id": "sms"}).encode()
    assert ResultRow.from_record(Record("results", 0, 8, None, untraced, ())).trace_id is None  # type: ignore[union-attr]
    index = Index(tmp_path / "i.sqlite3")
    index.add([row], [replace(letter_row, event_id="e1")], {})
    outcomes, letters = index.event("e1")
    assert [r["trace_id"] for r in outcomes] == [trace]
    assert [r["trace_id"] for r in letters] == [trace]
    index.close()
