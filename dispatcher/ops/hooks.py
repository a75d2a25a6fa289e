"""What `hooks apply | delete | list | show` and `replay` do: `dispatcher.cli.commands` calls these.

They talk to Kafka (the hook store, the dead-letter and results topics) and print for people;
the rules they follow live in `dispatcher.kafka.store` and `dispatcher.ops.replay.plan`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError
from dispatcher.hooks.definitions import definitions_in_file, merged
from dispatcher.hooks.describe import list_hooks, show_hook
from dispatcher.hooks.loader import load_hooks_file
from dispatcher.kafka.clients import check_reachable
from dispatcher.kafka.store import HookStore, hooks_in_force
from dispatcher.model.moments import iso
from dispatcher.ops.replay.plan import Plan, Summary
from dispatcher.ops.replay.run import ReplayOptions, prepare, run_replay


def apply_hooks(settings: Settings, path: str | Path) -> int:
    """`hooks apply FILE`: every hook of FILE into the store, or none (exit 1 with each problem)."""
    definitions = definitions_in_file(path)
    _store_configured(settings)
    check_reachable(settings)
    store = HookStore(settings)
    try:
        store.apply(definitions)
    finally:
        store.close()
    ids = ", ".join(d.hook.id for d in definitions)
    print(f"{path}: applied {len(definitions)} hook(s) to {settings.topics.hooks}: {ids}")
    return 0


def delete_hook(settings: Settings, hook_id: str) -> int:
    """`hooks delete ID`: a tombstone for ID in the store (exit 1 when the store has no ID)."""
    _store_configured(settings)
    check_reachable(settings)
    store = HookStore(settings)
    try:
        if hook_id not in store.read():
            raise ConfigError(f"no hook {hook_id!r} in the hook store {settings.topics.hooks}")
        store.delete(hook_id)
    finally:
        store.close()
    print(f"deleted {hook_id} from {settings.topics.hooks}")
    return 0


def list_hooks_command(settings: Settings) -> int:
    """`hooks list`: the hooks in force (hooks file and store), secrets masked."""
    check_reachable(settings)
    file_hooks = load_hooks_file(settings.hooks_file) if settings.hooks_file else []
    stored = HookStore(settings).read() if settings.topics.hooks else {}
    print(list_hooks(merged(file_hooks, stored)))
    print(f"\n{len(file_hooks)} from the hooks file, {len(stored)} from the hook store")
    return 0


def show_hook_command(settings: Settings, hook_id: str) -> int:
    """`hooks show ID`: the definition in force, as YAML, secrets masked."""
    check_reachable(settings)
    hook = hooks_in_force(settings).get(hook_id)
    if hook is None:
        raise ConfigError(f"no hook {hook_id!r}")
    sys.stdout.write(show_hook(hook))
    return 0


def replay_command(
    settings: Settings, options: ReplayOptions, console: Console | None = None
) -> int:
    """`dispatcher replay`: plan, then (unless dry-run) re-deliver with a progress bar; a summary."""
    console = console or Console(stderr=True)
    check_reachable(settings)
    hooks = hooks_in_force(settings)
    plan = prepare(settings, hooks, options.selection)
    if options.dry_run:
        Console(width=max(console.width, 160)).print(plan_table(plan))
        _, summary = run_replay(settings, hooks, options, prepared=plan)
    else:
        columns = (
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("replay", total=len(plan.send), counts="")

            def report(now: Summary) -> None:
                progress.update(task, completed=now.delivered + now.failed, counts=_counts(now))

            _, summary = run_replay(settings, hooks, options, report, prepared=plan)
    print(summary_line(summary))
    return 0


def plan_table(plan: Plan) -> Table:
    """What a dry run shows: every selected letter, and why a skipped one is skipped."""
    table = Table(title=f"{plan.selected} dead letters selected")
    for name in ("letter", "hook", "error kind", "failed at", "webhook-id", "replay"):
        table.add_column(name)
    rows = [(letter, "would send") for letter in plan.send] + list(plan.skip)
    for letter, action in rows:
        failed = iso(letter.failed_at) if letter.failed_at is not None else ""
        table.add_row(
            letter.where, letter.hook_id, letter.error_kind, failed, letter.idempotency_key, action
        )
    return table


def summary_line(summary: Summary) -> str:
    prefix = "dry run: nothing sent; " if summary.dry_run else ""
    return f"{prefix}selected {summary.selected}, {_counts(summary)}"


def _counts(summary: Summary) -> str:
    return (
        f"delivered {summary.delivered}, failed again {summary.failed}, skipped {summary.skipped}"
    )


def _store_configured(settings: Settings) -> None:
    if not settings.topics.hooks:
        raise ConfigError("topics.hooks is empty: the hook store is switched off")
