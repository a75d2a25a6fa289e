"""How the command line shows things: hooks as a table or YAML, a validation report, a tried
request and its verdict, a replay's plan, progress and summary. Pure text; commands print it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from ruamel.yaml import YAML

from dispatcher.errors import DeliveryError
from dispatcher.hooks.describe import describe
from dispatcher.hooks.loader import load_hooks_text, validate_hooks_text
from dispatcher.hooks.masking import shown_url
from dispatcher.model.health import Decision
from dispatcher.model.hook import Hook
from dispatcher.model.moments import iso
from dispatcher.ops.pausing import Change
from dispatcher.ops.replay.plan import Plan, Summary
from dispatcher.ops.trial import OAUTH2_NOTE, ShownRequest, TrialVerdict
from dispatcher.pipeline.match import HookIndex

COLUMNS = ("ID", "TENANT", "ENABLED", "EVENTS", "METHOD", "FORMAT", "FIELDS", "URL")
PREVIEW_BYTES = 4096
UNUSABLE = "its events are dead-lettered with error kind config, no request made"


def validation_report(path: str | Path, consume: str = "group") -> tuple[int, str]:
    """`hooks validate FILE`: exit code 0 or 1, and the text to print (every problem, one a line),
    for workers consuming as `consume` says."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return 1, f"{path}: cannot read hooks file: {exc}"
    problems = validate_hooks_text(text, str(path), warnings=True, consume=consume)
    lines = [str(problem) for problem in problems]
    errors = sum(not problem.warning for problem in problems)
    if errors:
        lines.append(f"{path}: {errors} problem{'s' if errors != 1 else ''}")
        return 1, "\n".join(lines)
    count = len(load_hooks_text(text, str(path)))
    lines.append(f"{path}: {count} hook{'s' if count != 1 else ''} valid")
    return 0, "\n".join(lines)


def hook_table(hooks: Iterable[Hook], decisions: Mapping[str, Decision] | None = None) -> str:
    """`hooks list`: one row per hook, columns aligned; a HEALTH column (unusable, paused,
    failing) only when some hook listed is unusable, or paused or failing on the health topic's
    `decisions`."""
    hooks = list(hooks)
    states = {hook.id: state_word(hook, (decisions or {}).get(hook.id)) for hook in hooks}
    health = any(states.values())
    header = (*COLUMNS[:3], "HEALTH", *COLUMNS[3:]) if health else COLUMNS
    rows: list[tuple[str, ...]] = [header]
    for hook in hooks:
        cells = _cells(hook)
        rows.append((*cells[:3], states[hook.id] or "-", *cells[3:]) if health else cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def _cells(hook: Hook) -> tuple[str, ...]:
    """A hook's row of `COLUMNS`; a stand-in's delivery columns are `-`: it has none."""
    matching = (hook.id, hook.tenant or "-", "yes" if hook.enabled else "no", ",".join(hook.events))
    if hook.stand_in:
        return (*matching, "-", "-", "-", "-")
    fields = str(len(hook.fields)) if hook.fields else "data"
    return (*matching, hook.method, hook.format, fields, shown_url(hook))


def unusable_text(hooks: Iterable[Hook]) -> str:
    """`hooks list`: a line for each hook listed that is unusable, with why (empty: none is)."""
    return "\n".join(
        f"{hook.id} is unusable: {UNUSABLE}: {_one_line(hook.unusable)}"
        for hook in hooks
        if hook.unusable is not None
    )


def state_word(hook: Hook, decision: Decision | None) -> str:
    """`unusable` while the hook cannot be delivered (its pairs are dead-lettered as `config`,
    paused or not), else its health word."""
    return "unusable" if hook.unusable is not None else health_word(decision)


def health_word(decision: Decision | None) -> str:
    """`paused` or `failing` while the decision in force says so, else empty (healthy, resumed,
    or nothing decided)."""
    if decision is None or decision.state not in ("paused", "failing"):
        return ""
    return decision.state


def health_comment(decision: Decision | None) -> str:
    """`hooks show`: YAML comment lines naming a paused or failing hook's state, since when and
    its last error (masked, as every verdict's); empty when it is neither."""
    state = health_word(decision)
    if decision is None or not state:
        return ""
    how = (
        (" by hand" if decision.reason == "manual" else " after failing")
        if state == "paused"
        else ""
    )
    lines = [f"# {state}{how} since {iso(decision.since)}"]
    if decision.last_error:
        lines.append(f"# last error: {' '.join(decision.last_error.split())}")
    return "\n".join(lines) + "\n"


def unusable_comment(hook: Hook) -> str:
    """`hooks show`: YAML comment lines saying an unusable hook's events are dead-lettered,
    and why (the problem, never a secret's value); empty for a usable hook."""
    if hook.unusable is None:
        return ""
    return f"# unusable: {UNUSABLE}\n# why: {_one_line(hook.unusable)}\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def hook_yaml(hook: Hook, decision: Decision | None = None) -> str:
    """`hooks show ID`: the hook as YAML, in the shape of a hooks file, secrets masked; first
    comment lines when it is unusable, or the `decision` in force has it paused or failing."""
    out = io.StringIO()
    out.write(unusable_comment(hook))
    out.write(health_comment(decision))
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.dump(describe(hook), out)
    return out.getvalue()


def request_text(shown: ShownRequest) -> str:
    """Method, URL, headers and body, as they go on the wire (secrets masked)."""
    lines = [f"{shown.method} {shown.url}"]
    lines += [f"{name}: {value}" for name, value in shown.headers]
    if shown.auth == "oauth2_client_credentials":
        lines.append(OAUTH2_NOTE)
    body = shown.body
    text = body[:PREVIEW_BYTES].decode("utf-8", "replace")
    more = f"\n... ({len(body) - PREVIEW_BYTES} more bytes)" if len(body) > PREVIEW_BYTES else ""
    return "\n".join(lines) + "\n\n" + text + more


def targeting_text(excluded: Iterable[str]) -> str:
    """`hooks test`: whether the sample event is for the hook (type, tenant and filter), and why
    not."""
    reasons = list(excluded)
    if not reasons:
        return "filter: the event is for this hook (type, tenant and filter pass)"
    return "\n".join(["filter: the event is NOT for this hook:", *(f"  - {r}" for r in reasons)])


def verdict_text(verdict: TrialVerdict) -> str:
    lines = [
        f"verdict: {'delivered' if verdict.ok else 'failed'}",
        f"status: {verdict.status if verdict.status is not None else '-'}",
        f"latency: {verdict.seconds * 1000:.1f} ms",
    ]
    if not verdict.ok:
        retry = "retryable" if verdict.retryable else "permanent"
        lines.append(f"error: {verdict.error_kind} ({retry}): {verdict.error}")
    if verdict.captured:
        lines.append(f"captured: {json.dumps(verdict.captured, default=str)}")
    return "\n".join(lines)


def render_failure_text(failure: DeliveryError) -> str:
    return f"render failed ({failure.kind}): {failure}"


TABLE_ROWS = 1000  # a dry run of more letters prints a line each (`plan_lines`), not a table
PLAN_COLUMNS = ("letter", "event id", "event type", "hook", "error kind", "failed at", "webhook-id")


def plan_table(plan: Plan) -> Table:
    """What a dry run shows: per selected letter its event, hook, failure and webhook-id, and
    whether it would be sent (or why not)."""
    table = Table(title=f"{plan.selected} dead letters selected")
    for name in (*PLAN_COLUMNS, "replay"):
        table.add_column(name, overflow="fold")
    for cells in _plan_rows(plan):
        table.add_row(*(Text(cell) for cell in cells))  # as they are: never rich markup
    return table


def plan_lines(plan: Plan) -> Iterator[str]:
    """A dry run's plan as tab-separated lines, the column names first: what a plan of more
    than `TABLE_ROWS` letters prints, at once and in little memory (a table of 200000 rows took
    minutes to draw)."""
    yield "\t".join((*PLAN_COLUMNS, "replay"))
    for cells in _plan_rows(plan):
        yield "\t".join(cells)


def _plan_rows(plan: Plan) -> Iterator[tuple[str, ...]]:
    """Each selected letter's cells, those to send first; a producer's text (an event's id or
    type) with what a terminal would act on written as escapes."""
    rows = chain(((letter, "would send") for letter in plan.send), plan.skip)
    for letter, action in rows:
        failed = iso(letter.failed_at) if letter.failed_at is not None else ""
        event_id, event_type = plan.event_of(letter)
        yield (
            letter.where,
            _printable(event_id),
            _printable(event_type),
            letter.hook_id,
            letter.error_kind,
            failed,
            letter.idempotency_key,
            _printable(action),
        )


def _printable(text: str) -> str:
    """`text` with each character that is not printable (escape, tab, newline ...) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def replay_progress(console: Console) -> Progress:
    """The progress bar of a replay; its task's `counts` field shows the counts so far."""
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def reading_progress(console: Console) -> Progress:
    """How far a replay has read the dead letters and the results (a task each, named by its
    description), before it sends: a topic of millions of letters takes minutes."""
    columns = (
        TextColumn("reading {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def unknown_hook_note(hook_id: str | None, hooks: HookIndex, plan: Plan) -> str | None:
    """What a replay of `--hook` that selected nothing says when no such hook is defined and no
    dead letter names it (a misspelt id, most likely); None otherwise."""
    if hook_id is None or plan.selected or hooks.get(hook_id) is not None:
        return None
    return f"note: no hook {hook_id} is defined, nor does a dead letter name it (dispatcher hooks list)"


def summary_line(summary: Summary) -> str:
    prefix = "dry run: nothing sent; " if summary.dry_run else ""
    stopped = (
        f"; stopped: {summary.not_sent} not sent, left for the next run" if summary.stopped else ""
    )
    return f"{prefix}selected {summary.selected}, {counts(summary)}{stopped}"


def counts(summary: Summary) -> str:
    return (
        f"delivered {summary.delivered}, failed again {summary.failed}, skipped {summary.skipped}"
    )


def pause_text(change: Change) -> str:
    """What `hooks pause` and `hooks resume` did."""
    decision = change.decision
    hook_id, since = decision.hook_id, iso(decision.since)
    how = "by hand" if decision.reason == "manual" else "after failing"
    if decision.state == "resumed":
        return f"resumed {hook_id} (paused since {since}): its pairs are delivered again"
    if not change.changed:
        return f"{hook_id} is already paused ({how}) since {since}"
    return (
        f"paused {hook_id} since {since}: its pairs are dead-lettered (error kind paused) until"
        f" `dispatcher hooks resume {hook_id}`"
    )
