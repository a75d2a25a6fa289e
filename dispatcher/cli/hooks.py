"""What the `dispatcher hooks` commands do: validate a file; list, show, apply and delete the
hooks in force; pause and resume one for every worker; try one (`test`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dispatcher.cli import commands, output
from dispatcher.cli.commands import settings_from
from dispatcher.config.settings import Settings, default_config_path
from dispatcher.errors import ConfigError
from dispatcher.hooks.loader import configured_hooks
from dispatcher.pipeline.match import HookIndex

if TYPE_CHECKING:
    from rich.console import Console

    from dispatcher.model.health import Decision
    from dispatcher.model.hook import Hook


def hooks_validate(args: argparse.Namespace) -> int:
    """Checked as the workers of the configuration (`--config`, `$DISPATCHER_CONFIG` or
    ./dispatcher.yaml, when there is one) would load it: in queue mode a hook ordered by key is
    refused, as `dispatcher run` refuses it."""
    configured = default_config_path(args.config) is not None
    consume = settings_from(args).consume if configured else "group"
    code, text = output.validation_report(args.file, consume)
    print(text, file=sys.stderr if code else sys.stdout)
    return code


def hooks_list(args: argparse.Namespace) -> int:
    return list_command(settings_from(args), args.tenant)


def hooks_show(args: argparse.Namespace) -> int:
    return show_command(settings_from(args), args.id)


def hooks_apply(args: argparse.Namespace) -> int:
    return apply_command(settings_from(args), args.file)


def hooks_delete(args: argparse.Namespace) -> int:
    return delete_command(settings_from(args), args.id)


def hooks_pause(args: argparse.Namespace) -> int:
    return pause_command(settings_from(args), args.id)


def hooks_resume(args: argparse.Namespace) -> int:
    return resume_command(settings_from(args), args.id, replay=args.replay)


def pause_command(settings: Settings, hook_id: str) -> int:
    """`hooks pause ID`: the hook paused for every worker, since now."""
    from dispatcher.kafka.clients import check_reachable
    from dispatcher.kafka.store import hooks_in_force
    from dispatcher.ops.pausing import TopicDecisions, pause_hook

    check_reachable(settings)
    change = pause_hook(TopicDecisions(settings), hooks_in_force(settings), hook_id)
    print(output.pause_text(change))
    return 0


def resume_command(
    settings: Settings, hook_id: str, *, replay: bool = False, console: Console | None = None
) -> int:
    """`hooks resume ID [--replay]`: the pause lifted everywhere; with --replay, the hook's
    dead letters since the pause began re-delivered (as `dispatcher replay` does)."""
    from dispatcher.kafka.clients import check_reachable
    from dispatcher.kafka.store import hooks_in_force
    from dispatcher.ops.pausing import SETTLE_SECONDS, TopicDecisions, resume_hook
    from dispatcher.ops.replay.run import ReplayOptions

    check_reachable(settings)
    settle = SETTLE_SECONDS if replay else 0.0
    decisions = TopicDecisions(settings)
    change = resume_hook(decisions, hooks_in_force(settings), hook_id, settle=settle)
    print(output.pause_text(change))
    if not replay:
        return 0
    return commands.replay_command(settings, ReplayOptions(change.replay), console)


def list_command(settings: Settings, tenant: str | None = None) -> int:
    """`hooks list [--tenant T]`: the hooks in force (hooks file and store), secrets masked;
    those the workers hold as unusable marked, each with why."""
    from dispatcher.ops.manage import list_hooks

    listing = list_hooks(settings)
    shown = [h for h in listing.hooks if tenant is None or h.tenant == tenant]
    print(output.hook_table(shown, _decisions(settings)))
    unusable = output.unusable_text(shown)
    if unusable:
        print(f"\n{unusable}")
    print(f"\n{listing.sources({hook.id for hook in shown})}")
    return 0


def show_command(settings: Settings, hook_id: str) -> int:
    """`hooks show ID`: the definition in force, as YAML, secrets masked (after comment lines
    when it is unusable, paused or failing). An unusable hook is a problem of the hook store's
    content: after what is known of it, `ConfigError` (exit 1) saying why."""
    from dispatcher.ops.manage import hook_in_force

    hook = hook_in_force(settings, hook_id)
    sys.stdout.write(output.hook_yaml(hook, _decisions(settings).get(hook_id)))
    if hook.unusable is not None:
        sys.stdout.flush()  # the definition first, then the error line on stderr
        raise ConfigError(f"hook {hook_id} is unusable, {output.UNUSABLE}: {hook.unusable}")
    return 0


def _decisions(settings: Settings) -> dict[str, Decision]:
    """The health topic's decisions on hooks (paused, failing ...), as the workers follow them;
    none when the topic is not there yet (a read-only look creates nothing)."""
    from dispatcher.kafka.health import read_decisions

    return read_decisions(settings, create=False)


def apply_command(settings: Settings, path: str | Path) -> int:
    """`hooks apply FILE`: every hook of FILE into the store, or none (exit 1 with each problem)."""
    from dispatcher.ops.manage import apply_hooks

    ids = apply_hooks(settings, path)
    print(f"{path}: applied {len(ids)} hook(s) to {settings.topics.hooks}: {', '.join(ids)}")
    return 0


def delete_command(settings: Settings, hook_id: str) -> int:
    """`hooks delete ID`: a tombstone for ID in the store (exit 1 when the store has no ID)."""
    from dispatcher.ops.manage import delete_hook

    delete_hook(settings, hook_id)
    print(f"deleted {hook_id} from {settings.topics.hooks}")
    return 0


def hooks_test(args: argparse.Namespace) -> int:
    from dispatcher.ops import trial

    settings = settings_from(args)
    hook = _hook_to_test(settings, args.id, args.hooks_file)
    tried = trial.prepare(hook, trial.read_event(Path(args.event)))
    print(output.targeting_text(tried.excluded) + "\n")
    if tried.request is None or tried.shown is None:
        assert tried.failure is not None
        print(output.render_failure_text(tried.failure))
        return 1
    text = output.request_text(tried.shown)
    if not args.send:
        print(text)
        return 0
    verdict = trial.send(settings, hook, tried)
    if isinstance(verdict, trial.NotSent):
        print(text + f"\n\nnot sent: {verdict.reason}")
        return 1
    print(text + "\n\n" + output.verdict_text(verdict))
    return 0 if verdict.ok else 1


def _hook_to_test(settings: Settings, hook_id: str, hooks_file: str | None) -> Hook:
    """The hook `hooks test` tries: the one of `hooks_file` (--hooks-file: no Kafka needed),
    else the one in force, as `hooks show` finds it (a stored hook wins over the hooks file's
    of its id, and one only stored is found too). The hooks file's problems are said first,
    before Kafka is asked."""
    if hooks_file is not None:
        from dispatcher.hooks.loader import load_hooks_file

        index, where = HookIndex(load_hooks_file(hooks_file)), hooks_file
    else:
        index = configured_hooks(settings)
        if settings.topics.hooks:
            from dispatcher.ops.manage import hook_in_force

            return hook_in_force(settings, hook_id)
        where = settings.hooks_file or "any place (no hooks_file, no hook store)"
    hook = index.get(hook_id)
    if hook is None:
        raise ConfigError(f"no hook {hook_id!r} in {where}")
    return hook
