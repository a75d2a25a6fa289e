"""The `dispatcher` command: a thin shell, each command parses arguments and calls one function."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence

from dispatcher import __version__, logs, signals
from dispatcher.errors import ConfigError, KafkaUnavailable

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_KAFKA = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # as a shell reports a process SIGPIPE ended: 141
Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "serves", False):
        signals.stop_quietly_until_started()
        signals.dump_stacks_on_request()
    if not hasattr(args, "command"):
        getattr(args, "usage", parser).print_help(sys.stderr)
        return EXIT_USAGE
    # The demo prints its own story; the service logs at INFO until its configuration's
    # `log_level` is read (`commands.settings_from`), unless --log-level says otherwise.
    logs.configure(args.log_level or ("WARNING" if getattr(args, "quiet", False) else "INFO"))
    command: Command = args.command
    try:
        return command(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KafkaUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_KAFKA
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # whoever read the output stopped (`| head`): no traceback for it
        _stdout_nowhere()
        return EXIT_BROKEN_PIPE


def _stdout_nowhere() -> None:
    """Point stdout at /dev/null: what is still buffered for a closed pipe goes nowhere, rather
    than fail again as the interpreter flushes it at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatcher",
        description="The DUGAA dispatcher: delivers the events on Kafka to third parties' HTTP"
        " endpoints (hooks). `dispatcher COMMAND --help` says more of each command.",
    )
    parser.add_argument("--version", action="version", version=f"dispatcher {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="service configuration (default: $DISPATCHER_CONFIG, "
        "else ./dispatcher.yaml when present)",
    )
    common.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="overrides the configuration's log_level (INFO by default)",
    )
    sub = parser.add_subparsers()

    run = sub.add_parser("run", parents=[common], help="run the dispatcher service")
    run.add_argument(
        "--workers",
        type=_at_least(1),
        default=1,
        help="worker processes in one group (worker i serves /metrics on http_port + i)",
    )
    run.set_defaults(command=_cmd("run"), serves=True)

    admin = sub.add_parser("admin", parents=[common], help="the admin console and API")
    admin.set_defaults(command=_cmd("admin"), serves=True)

    health = sub.add_parser(
        "healthcheck",
        parents=[common],
        help="ask this container's worker (or admin service) whether it is alive: exit 0 or 1",
    )
    asked = health.add_mutually_exclusive_group()
    asked.add_argument("--ready", action="store_true", help="ask /readyz, not /healthz")
    asked.add_argument("--admin", action="store_true", help="ask the admin service on admin.port")
    health.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for the answer (2)"
    )
    health.set_defaults(command=_healthcheck)

    hooks_parser = sub.add_parser("hooks", help="check and manage hooks")
    hooks_parser.set_defaults(usage=hooks_parser)  # `dispatcher hooks` alone: its commands
    hooks = hooks_parser.add_subparsers()
    validate = hooks.add_parser("validate", parents=[common], help="check a hooks file")
    validate.add_argument("file", help="a hooks file (YAML)")
    validate.set_defaults(command=_cmd("hooks_validate"))
    for name, needs_id, what in (
        ("list", False, "the hooks in force (hooks file and store)"),
        ("show", True, "one hook's definition in force, secrets masked"),
        ("delete", True, "remove a hook from the store"),
    ):
        cmd = hooks.add_parser(name, parents=[common], help=what)
        if needs_id:
            cmd.add_argument("id", help="the hook's id")
        else:
            cmd.add_argument("--tenant", help="only the hooks of this tenant")
        cmd.set_defaults(command=_cmd(f"hooks_{name}"))
    pause = hooks.add_parser("pause", parents=[common], help="pause a hook for the whole cluster")
    pause.add_argument("id", help="the hook's id")
    pause.set_defaults(command=_cmd("hooks_pause"))
    resume = hooks.add_parser("resume", parents=[common], help="lift a hook's pause")
    resume.add_argument("id", help="the hook's id")
    resume.add_argument(
        "--replay",
        action="store_true",
        help="re-deliver every dead letter of the hook since the pause began",
    )
    resume.set_defaults(command=_cmd("hooks_resume"))
    apply = hooks.add_parser("apply", parents=[common], help="put the hooks of FILE in the store")
    apply.add_argument("file", help="a hooks file (YAML): all its hooks, or none")
    apply.set_defaults(command=_cmd("hooks_apply"))
    test = hooks.add_parser("test", parents=[common], help="render (and --send) one request")
    test.add_argument("id", help="the hook's id")
    test.add_argument("--event", required=True, help="a CloudEvent as JSON (file)")
    test.add_argument(
        "--send", action="store_true", help="send it once, and show the response and the verdict"
    )
    test.add_argument(
        "--hooks-file",
        help="take the hook from this file (no Kafka needed), not the hooks in force",
    )
    test.set_defaults(command=_cmd("hooks_test"))

    replay = sub.add_parser("replay", parents=[common], help="re-deliver dead letters")
    replay.add_argument("--hook", help="only the dead letters of this hook")
    replay.add_argument(
        "--since",
        help="only letters failed at or after: ISO 8601 (2026-11-28T00:00:00Z) or an age (2h)",
    )
    replay.add_argument("--until", help="only letters failed at or before (as --since)")
    replay.add_argument(
        "--error-kind", help="only letters of this error kind (http_status, timeout, expired ...)"
    )
    replay.add_argument("--tenant", help="only the dead letters of this tenant's events")
    replay.add_argument(
        "--limit", type=_at_least(0), help="send at most N letters (skipped ones do not count)"
    )
    replay.add_argument("--rate", type=float, help="dead letters per second")
    replay.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed; send nothing"
    )
    replay.set_defaults(command=_cmd("replay"))

    decrypt = sub.add_parser("decrypt", parents=[common], help="decrypt a body as a receiver")
    decrypt.add_argument(
        "--algorithm",
        required=True,
        help="A256GCM, A128GCM, A256CBC-HS512, A128CBC-HS256, C20P or fernet",
    )
    decrypt.add_argument(
        "--key",
        required=True,
        action="append",
        help="base64url key, or ${env:NAME} / ${file:/path}; repeatable; write --key=KEY (a"
        " key may begin with -)",
    )
    decrypt.add_argument("file", nargs="?", help="the body as received (default: stdin)")
    decrypt.set_defaults(command=_cmd("decrypt"))

    produce = sub.add_parser("produce", parents=[common], help="publish one event")
    produce.add_argument("--type", required=True, help="the event's type (order.shipped)")
    produce.add_argument("--data", required=True, help="the event's data as JSON")
    produce.add_argument("--key", help="the Kafka key (the ordering key)")
    produce.add_argument("--tenant", help="the event's tenant (CloudEvents extension)")
    produce.add_argument(
        "--extension",
        action="append",
        default=[],
        type=_extension,
        metavar="NAME=VALUE",
        help="an extension attribute of the event, as text (region=eu); may be repeated",
    )
    produce.add_argument("--source", default="/dugaa/cli", help="the event's source")
    produce.add_argument("--topic", help="default: the first of topics.events")
    encoding = produce.add_mutually_exclusive_group()
    encoding.add_argument("--binary", action="store_true", help="binary mode (ce_* headers)")
    encoding.add_argument("--avro", action="store_true", help="Avro-encoded event")
    produce.set_defaults(command=_cmd("produce"))

    demo = sub.add_parser("demo", parents=[common], help="the whole system on this machine")
    demo.add_argument("--events", type=int, default=30, help="how many sample events (30)")
    demo.set_defaults(quiet=True)
    demo.set_defaults(command=_cmd("demo"))
    return parser


def _at_least(least: int) -> Callable[[str], int]:
    """A whole number of `least` or more, or a usage error naming the option (`--workers 0`
    ran one worker, as if it were 1; `replay --limit -1` was refused as `limit:`)."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
        return value

    return count


def _extension(text: str) -> tuple[str, str]:
    """`NAME=VALUE`, NAME as CloudEvents asks an extension's (a-z and 0-9) and no attribute of
    its own option or of the event's context: a usage error saying which it is, else."""
    from dispatcher.model.event import NOT_EXTENSIONS

    name, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    if not re.fullmatch("[a-z0-9]+", name):
        raise argparse.ArgumentTypeError(f"name {name!r}: only a-z and 0-9 (CloudEvents)")
    if name in NOT_EXTENSIONS:
        hint = " (use --tenant)" if name == "tenant" else ""
        raise argparse.ArgumentTypeError(f"{name} is no extension of the producer's{hint}")
    return name, value


def _cmd(name: str) -> Command:
    """Import the command's module only when it runs: `dispatcher decrypt` needs no Kafka.
    `hooks_*`: the `hooks` commands (cli/hooks.py), the others in cli/commands.py."""

    def run(args: argparse.Namespace) -> int:
        from dispatcher.cli import commands, hooks

        result: int = getattr(hooks if name.startswith("hooks_") else commands, name)(args)
        return result

    return run


def _healthcheck(args: argparse.Namespace) -> int:
    """`dispatcher healthcheck`, without the commands' imports: it runs every few seconds."""
    from dispatcher.cli.healthcheck import healthcheck

    return healthcheck(args)


def print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=str))
