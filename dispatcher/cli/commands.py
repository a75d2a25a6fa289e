"""What each CLI command does; `dispatcher.cli.main` only parses arguments and calls these."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatcher import logs, signals, tracing
from dispatcher.cli import output
from dispatcher.config.settings import Settings, default_config_path, load_settings
from dispatcher.errors import ConfigError, DecodeError, KafkaUnavailable
from dispatcher.hooks.loader import configured_hooks
from dispatcher.logs import KAFKA
from dispatcher.model.event import Event
from dispatcher.model.moments import iso

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from dispatcher.ops.replay.run import ReplayOptions


def settings_from(args: argparse.Namespace) -> Settings:
    """The configuration the command names; from here on it logs at its `log_level`, unless
    --log-level was given, which wins."""
    settings = load_settings(default_config_path(getattr(args, "config", None)))
    if getattr(args, "log_level", None) is None:
        logs.configure(settings.log_level)
    return settings


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    hooks = configured_hooks(settings)
    if args.workers > 1:
        from dispatcher.engine.processes import run_processes

        code: int = run_processes(
            args.workers,
            settings.source if settings.source != "<defaults>" else None,
            args.log_level,
        )
        return code
    from dispatcher.engine import collector
    from dispatcher.engine.worker import Worker

    collector.tune()
    Worker(settings, hooks).run()
    return 0


def admin(args: argparse.Namespace) -> int:
    """`dispatcher admin`: the console and the admin API until SIGTERM/SIGINT."""
    from dispatcher.api.server import serve

    serve(settings_from(args))
    return 0


def replay(args: argparse.Namespace) -> int:
    from dispatcher.ops.replay.run import ReplayOptions
    from dispatcher.ops.replay.selection import selection_from

    try:
        selection = selection_from(
            now=time.time(),
            hook=args.hook,
            since=args.since,
            until=args.until,
            error_kind=args.error_kind,
            limit=args.limit,
            tenant=args.tenant,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError("--rate: must be a finite number above 0")
    return replay_command(settings_from(args), ReplayOptions(selection, args.rate, args.dry_run))


def replay_command(
    settings: Settings, options: ReplayOptions, console: Console | None = None
) -> int:
    """`dispatcher replay`: plan, then (unless dry-run) re-deliver with a progress bar; a summary.
    SIGINT or SIGTERM while it sends stops it in order: what is under way ends and is recorded,
    the summary says how many letters were left for the next run, and the exit code is the
    signal's (130, 143). Ctrl-C while it still reads ends it at once: nothing sent, 130. A
    replay that ends with letters failed again exits 1, one that delivered all it sent 0."""
    from rich.console import Console

    from dispatcher.kafka.clients import check_reachable
    from dispatcher.kafka.store import hooks_in_force
    from dispatcher.ops.replay.plan import Summary
    from dispatcher.ops.replay.run import prepare, run_replay

    console = console or Console(stderr=True)
    check_reachable(settings)
    hooks = hooks_in_force(settings)
    try:
        with output.reading_progress(console) as reading:
            tasks: dict[str, TaskID] = {}

            def read(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = reading.add_task(what, total=total)
                reading.update(tasks[what], completed=done)

            plan = prepare(settings, hooks, options.selection, read)
    except KeyboardInterrupt:  # Ctrl-C before a letter was sent: a run again starts afresh
        print("stopped while reading: nothing sent")
        return 128 + signal.SIGINT
    note = output.unknown_hook_note(options.selection.hook, hooks, plan)
    if note is not None:
        print(note, file=sys.stderr)
    if options.dry_run:
        if plan.selected <= output.TABLE_ROWS:
            Console(width=max(console.width, 160)).print(output.plan_table(plan))
        else:
            for line in output.plan_lines(plan):
                print(line)
        _, summary = run_replay(settings, hooks, options, prepared=plan)
        print(output.summary_line(summary))
        return 0
    provider = tracing.start("replay")
    stop = signals.StopRequest()
    try:
        with output.replay_progress(console) as progress:
            task = progress.add_task("replay", total=len(plan.send), counts="")

            def report(now: Summary) -> None:
                done = now.delivered + now.failed
                progress.update(task, completed=done, counts=output.counts(now))

            _, summary = run_replay(
                settings, hooks, options, report, prepared=plan, tracing=provider, stop=stop.event
            )
    finally:
        tracing.stop(provider)
    print(output.summary_line(summary))
    if summary.stopped:
        return stop.exit_code
    return 1 if summary.failed else 0  # a letter failed again: dead-lettered anew


def produce(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from dispatcher.kafka.clients import check_reachable, made
    from dispatcher.kafka.scopes import client_settings

    settings = settings_from(args)
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        raise ConfigError(f"--data is not JSON: {exc}") from None
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": args.type,
        "source": args.source,
        "time": iso(time.time()),
        "datacontenttype": "application/json",
        "data": data,
    }
    if args.tenant:
        event["tenant"] = args.tenant
    event.update(args.extension)  # each form writes them as it writes the tenant
    checked = _cloud_event(event)
    topic = args.topic or settings.topics.events[0]
    check_reachable(settings)
    producer = made(Producer, {**client_settings(settings, "producer"), "logger": KAFKA}, settings)
    key = args.key.encode() if args.key else None
    headers: list[tuple[str, str | bytes | None]]
    if args.avro:
        from dispatcher.kafka.avro import produce_value

        value, content_type = produce_value(
            checked, topic=topic, schema_registry=settings.schema_registry
        )
        headers = [("content-type", content_type)]
    elif args.binary:
        headers = [(f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data"]
        headers.append(("content-type", b"application/json"))
        value = json.dumps(data).encode()
    else:
        value = json.dumps(event).encode()
        headers = [("content-type", b"application/cloudevents+json")]
    _publish(producer, topic, value, key, headers)
    print(json.dumps({"topic": topic, "id": event["id"], "type": args.type}))
    return 0


def _cloud_event(attributes: dict[str, Any]) -> Event:
    """`produce`'s event, checked as a worker reads one: an empty --type or --source would be
    published, then dead-lettered by every worker as `decode`."""
    try:
        return Event.from_dict(attributes)
    except DecodeError as exc:
        raise ConfigError(f"not published: {exc} (--type and --source may not be empty)") from None


def _publish(
    producer: Any,
    topic: str,
    value: bytes,
    key: bytes | None,
    headers: list[tuple[str, str | bytes | None]],
) -> None:
    """Produce one record and wait for Kafka's answer: `ConfigError` when Kafka did not take it,
    saying why (its delivery report's error: a flush alone returns 0 for a record Kafka refused,
    which was reported as published); `KafkaUnavailable` (exit 3) when the producer failed for
    good (a librdkafka fatal error, raised by the flush), in a worker's words."""
    from dispatcher.kafka.outgoing import is_fatal
    from dispatcher.kafka.polled import Polled

    polled = Polled(producer)
    refused: list[Any] = []

    def answered(err: Any, _message: Any) -> None:
        if is_fatal(err):
            polled.failed_for_good(err)
        elif err is not None:
            refused.append(err)

    producer.produce(topic, value=value, key=key, headers=headers, on_delivery=answered)
    left = polled.flush(15)
    if polled.fatal is not None:
        raise KafkaUnavailable.failed_for_good(polled.fatal)
    if refused:
        raise ConfigError(f"event not taken by Kafka ({topic}): {refused[0].str()}")
    if left:
        raise ConfigError(f"event not acknowledged by Kafka ({topic})")


def decrypt(args: argparse.Namespace) -> int:
    from dispatcher.config.secrets import resolve
    from dispatcher.errors import DecryptionError
    from dispatcher.security.decryption import decrypt_payload

    try:
        payload = Path(args.file).read_bytes() if args.file else sys.stdin.buffer.read()
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read: {exc.strerror}") from None
    keys = [resolve(k, where="--key") for k in args.key]
    try:
        plaintext = decrypt_payload(args.algorithm, keys, payload.strip())
    except (ValueError, DecryptionError) as exc:
        raise ConfigError(f"cannot decrypt: {exc}") from None
    sys.stdout.buffer.write(plaintext)
    return 0


def demo(args: argparse.Namespace) -> int:
    from dispatcher.devtools.demo import run_demo

    code: int = run_demo(events=args.events)
    return code
