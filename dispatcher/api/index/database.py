"""The index in SQLite: result, dead-letter and attempt rows with the topic offsets they were
read up to, written together in one transaction, so after a restart it goes on exactly where it
stopped.

Retention is bounded by age and by count. Every look-up of the console and the API is a query
here, never a scan of a topic; a tenant's principal asks through a `Visible`, so it reads only
its rows.

The file carries its schema's version (`pragma user_version`). The index is a copy of two
topics, so a file of an older version is emptied, offsets too, and filled again from the
topics: rows indexed before version 2 had no tenant, before version 3 no trace id, before
version 4 no hook tenant.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dispatcher.api.index.rows import AttemptRow, LetterRow, ResultRow

log = logging.getLogger(__name__)
VERSION = 4  # 2: rows keep their tenant; 3: and their trace id; 4: and their hook's tenant
SCHEMA = """
create table if not exists results (
    event_id text, event_type text, hook_id text, outcome text, attempts integer,
    http_status integer, latency_ms real, error_kind text, error text, idempotency_key text,
    completed_at real, "where" text primary key, tenant text, trace_id text, hook_tenant text);
create index if not exists results_hook on results (hook_id, completed_at);
create index if not exists results_event on results (event_id);
create index if not exists results_time on results (completed_at);
create table if not exists letters (
    "where" text primary key, hook_id text, error_kind text, error text, http_status integer,
    attempts integer, idempotency_key text, event_id text, event_type text, failed_at real,
    replayed_from text, tenant text, trace_id text, hook_tenant text);
create index if not exists letters_hook on letters (hook_id, error_kind, failed_at);
create index if not exists letters_event on letters (event_id);
create index if not exists letters_key on letters (idempotency_key);
create index if not exists letters_time on letters (failed_at);
create table if not exists attempts (
    event_id text, hook_id text, attempt integer, idempotency_key text, http_status integer,
    latency_ms real, error_kind text, error text, response_excerpt text, at real,
    "where" text primary key, tenant text, hook_tenant text);
create index if not exists attempts_event on attempts (event_id);
create index if not exists attempts_hook on attempts (hook_id, at);
create index if not exists attempts_time on attempts (at);
create table if not exists positions (topic text, partition integer, next integer,
    primary key (topic, partition));
"""
RESULT_COLUMNS = [f.name for f in fields(ResultRow)]
LETTER_COLUMNS = [f.name for f in fields(LetterRow)]
ATTEMPT_COLUMNS = [f.name for f in fields(AttemptRow)]
TIMES = (("results", "completed_at"), ("letters", "failed_at"), ("attempts", "at"))
# an attempt's status class: 2xx ... 5xx by its answer; without one, timeout or network (a
# refused destination or credential included), as dispatcher_delivery_attempts_total counts
STATUS_CLASS = (
    "case when http_status is null then"
    " (case when error_kind in ('timeout', 'cut') then error_kind else 'network' end)"
    " else min(max(http_status / 100, 1), 5) || 'xx' end"
)


@dataclass(frozen=True, slots=True)
class Visible:
    """The rows a tenant's principal may see: of its tenant's events, written for a hook of
    its tenant (`hook_tenant`, as the hook was then), and of hooks it has now. So a record of
    a hook of every tenant, or of another tenant's, stays hidden after the hook (or its id)
    became the tenant's, and a row without a hook tenant (indexed from a record of a version
    that did not write one) is the operator's only."""

    tenant: str
    hooks: frozenset[str]

    def clause(self) -> tuple[str, list[Any]]:
        """An `and ...` to add to a query's conditions, with its arguments."""
        return (
            " and tenant = ? and hook_tenant = ? and hook_id in (select value from json_each(?))",
            [self.tenant, self.tenant, json.dumps(sorted(self.hooks))],
        )


def _scoped(sql: str, args: list[Any], visible: Visible | None) -> tuple[str, list[Any]]:
    if visible is None:
        return sql, args
    clause, more = visible.clause()
    return sql + clause, [*args, *more]


class Index:
    """One SQLite file; safe to use from the follower thread and request threads at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("pragma journal_mode=wal")
            version = self._db.execute("pragma user_version").fetchone()[0]
            if version < VERSION:
                self._db.executescript(
                    "drop table if exists results; drop table if exists letters; "
                    "drop table if exists attempts; drop table if exists positions;"
                )
                if version:
                    log.info("index: schema %d is older than %d: reading again", version, VERSION)
            self._db.executescript(SCHEMA)
            self._db.execute(f"pragma user_version = {VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        results: Sequence[ResultRow],
        letters: Sequence[LetterRow],
        positions: dict[tuple[str, int], int],
        attempts: Sequence[AttemptRow] = (),
    ) -> None:
        """Rows and the offsets they were read up to, in one transaction."""
        with self._lock:
            self._db.execute("begin")
            try:
                _insert(self._db, "results", RESULT_COLUMNS, (asdict(r) for r in results))
                _insert(self._db, "letters", LETTER_COLUMNS, (asdict(r) for r in letters))
                _insert(self._db, "attempts", ATTEMPT_COLUMNS, (asdict(r) for r in attempts))
                self._db.executemany(
                    "insert or replace into positions values (?, ?, ?)",
                    [(t, p, n) for (t, p), n in positions.items()],
                )
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    def positions(self, topic: str) -> dict[int, int]:
        """The next offset to read of each partition of `topic` (none: from the beginning)."""
        rows = self._query("select partition, next from positions where topic = ?", (topic,))
        return {int(r["partition"]): int(r["next"]) for r in rows}

    def prune(self, older_than: float, keep: int) -> int:
        """Drop rows older than `older_than` (epoch s) and all but the newest `keep` of each
        table; how many went."""
        dropped = 0
        with self._lock:
            for table, at in TIMES:
                old = f"delete from {table} where {at} < ?"  # noqa: S608 - names are ours
                dropped += self._db.execute(old, (older_than,)).rowcount
                count = f"select count(*) from {table}"  # noqa: S608
                if self._db.execute(count).fetchone()[0] <= keep:
                    continue
                excess = (
                    f"delete from {table} where rowid not in "  # noqa: S608
                    f"(select rowid from {table} order by {at} desc limit ?)"
                )
                dropped += self._db.execute(excess, (keep,)).rowcount
        return dropped

    # -- reading ---------------------------------------------------------------------------

    def outcomes(
        self,
        hook_id: str,
        *,
        outcome: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        visible: Visible | None = None,
    ) -> list[dict[str, Any]]:
        """A hook's outcomes, newest first, by outcome and completion time."""
        sql, args = _scoped("select * from results where hook_id = ?", [hook_id], visible)
        if outcome:
            sql, args = sql + " and outcome = ?", [*args, outcome]
        if since is not None:
            sql, args = sql + " and completed_at >= ?", [*args, since]
        if until is not None:
            sql, args = sql + " and completed_at <= ?", [*args, until]
        return self._query(sql + " order by completed_at desc limit ?", (*args, limit))

    def event(
        self, event_id: str, visible: Visible | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every outcome and every dead letter of one event."""
        sql, args = _scoped("select * from results where event_id = ?", [event_id], visible)
        results = self._query(sql + " order by completed_at", args)
        keys = [r["idempotency_key"] for r in results if r["idempotency_key"]]
        marks = ",".join("?" * len(keys))
        sql, args = _scoped(
            f"select * from letters where (event_id = ? or idempotency_key in ({marks}))",  # noqa: S608
            [event_id, *keys],
            visible,
        )
        letters = self._query(sql + " order by failed_at", args)
        return results, letters

    def attempts_of_event(
        self, event_id: str, visible: Visible | None = None
    ) -> list[dict[str, Any]]:
        """Every attempt of every hook for one event, by hook, then in the order made."""
        sql, args = _scoped("select * from attempts where event_id = ?", [event_id], visible)
        return self._query(sql + " order by hook_id, at, attempt", args)

    def attempts_of_hook(
        self, hook_id: str, limit: int = 50, visible: Visible | None = None
    ) -> list[dict[str, Any]]:
        """A hook's newest attempts, newest first."""
        sql, args = _scoped("select * from attempts where hook_id = ?", [hook_id], visible)
        return self._query(sql + " order by at desc limit ?", (*args, limit))

    def status_classes(
        self, hook_id: str, since: float | None = None, visible: Visible | None = None
    ) -> dict[str, int]:
        """A hook's attempts (since `since`, else all the index keeps) counted by class: 2xx,
        3xx, 4xx, 5xx, timeout, network, and cut (a request the worker cut short, no failure of
        the hook)."""
        sql, args = _scoped(
            f"select {STATUS_CLASS} as class, count(*) as count from attempts where hook_id = ?",  # noqa: S608
            [hook_id],
            visible,
        )
        if since is not None:
            sql, args = sql + " and at >= ?", [*args, since]
        rows = self._query(sql + " group by class order by class", args)
        return {str(r["class"]): int(r["count"]) for r in rows}

    def letter_groups(
        self, since: float | None = None, visible: Visible | None = None
    ) -> list[dict[str, Any]]:
        """Dead letters counted by hook and error kind, with the newest failure of each group."""
        sql, args = _scoped(
            "select hook_id, error_kind, count(*) as count, max(failed_at) as last "
            "from letters where 1 = 1",
            [],
            visible,
        )
        if since is not None:
            sql, args = sql + " and failed_at >= ?", [*args, since]
        return self._query(sql + " group by hook_id, error_kind order by hook_id, error_kind", args)

    def letters(
        self,
        hook_id: str | None,
        error_kind: str | None,
        limit: int = 100,
        visible: Visible | None = None,
    ) -> list[dict[str, Any]]:
        sql, args = _scoped("select * from letters where 1 = 1", [], visible)
        if hook_id is not None:
            sql, args = sql + " and hook_id = ?", [*args, hook_id]
        if error_kind is not None:
            sql, args = sql + " and error_kind = ?", [*args, error_kind]
        return self._query(sql + " order by failed_at desc limit ?", (*args, limit))

    def health(self, since: float, visible: Visible | None = None) -> dict[str, dict[str, Any]]:
        """Per hook since `since`: deliveries, failures, the last error and the last success."""
        sql, args = _scoped(
            "select hook_id, count(*) as total, "
            "sum(outcome = 'dead_lettered') as failed, "
            "max(case when outcome = 'delivered' then completed_at end) as last_success "
            "from results where completed_at >= ?",
            [since],
            visible,
        )
        rows = self._query(sql + " group by hook_id", args)
        health = {r["hook_id"]: {**r, "last_error": None} for r in rows}
        sql, args = _scoped(
            "select hook_id, error, max(completed_at) from results "
            "where outcome = 'dead_lettered' and completed_at >= ?",
            [since],
            visible,
        )
        for row in self._query(sql + " group by hook_id", args):
            if row["hook_id"] in health:
                health[row["hook_id"]]["last_error"] = row["error"]
        return health

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, tuple(args))]


def _insert(
    db: sqlite3.Connection, table: str, columns: list[str], rows: Iterable[dict[str, Any]]
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    db.executemany(
        f"insert or replace into {table} ({names}) values ({marks})",  # noqa: S608
        [tuple(row[c] for c in columns) for row in rows],
    )
