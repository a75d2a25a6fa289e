"""What each CLI command does; `cli.py` only parses arguments and calls these."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from dispatcher.config.settings import Settings, default_config_path, load_settings
from dispatcher.errors import ConfigError
from dispatcher.hooks.loader import configured_hooks
from dispatcher.logs import KAFKA
from dispatcher.model.moments import iso
from dispatcher.pipeline.match import HookIndex


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(default_config_path(getattr(args, "config", None)))


def run(args: argparse.Namespace) -> int:
    from dispatcher.api.routes import register_admin_api

    settings = settings_from(args)
    hooks = configured_hooks(settings)
    if args.workers > 1:
        from dispatcher.engine.processes import run_processes

        code: int = run_processes(
            args.workers,
            settings.source if settings.source != "<defaults>" else None,
            args.log_level,
            extensions=(register_admin_api,),
        )
        return code
    from dispatcher.engine import collector
    from dispatcher.engine.worker import Worker

    collector.tune()
    Worker(settings, hooks, extensions=(register_admin_api,)).run()
    return 0


def hooks_validate(args: argparse.Namespace) -> int:
    from dispatcher.hooks.describe import validate_command

    code, text = validate_command(args.file)
    print(text, file=sys.stderr if code else sys.stdout)
    return code


def hooks_list(args: argparse.Namespace) -> int:
    from dispatcher.ops.hooks import list_hooks_command

    return list_hooks_command(settings_from(args))


def hooks_show(args: argparse.Namespace) -> int:
    from dispatcher.ops.hooks import show_hook_command

    return show_hook_command(settings_from(args), args.id)


def hooks_apply(args: argparse.Namespace) -> int:
    from dispatcher.ops.hooks import apply_hooks

    return apply_hooks(settings_from(args), args.file)


def hooks_delete(args: argparse.Namespace) -> int:
    from dispatcher.ops.hooks import delete_hook

    return delete_hook(settings_from(args), args.id)


def replay(args: argparse.Namespace) -> int:
    from dispatcher.ops.hooks import replay_command
    from dispatcher.ops.replay.plan import selection_from
    from dispatcher.ops.replay.run import ReplayOptions

    try:
        selection = selection_from(
            now=time.time(),
            hook=args.hook,
            since=args.since,
            until=args.until,
            error_kind=args.error_kind,
            limit=args.limit,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.rate is not None and args.rate <= 0:
        raise ConfigError("--rate: must be > 0")
    return replay_command(settings_from(args), ReplayOptions(selection, args.rate, args.dry_run))


def hooks_test(args: argparse.Namespace) -> int:
    from dispatcher.ops.probe import probe_hook

    settings = settings_from(args)
    if args.hooks_file:
        from dispatcher.hooks.loader import load_hooks_file

        index = HookIndex(load_hooks_file(args.hooks_file))
    else:
        index = configured_hooks(settings)
    hook = index.get(args.id)
    if hook is None:
        raise ConfigError(f"no hook {args.id!r}")
    code, text = probe_hook(hook, Path(args.event), settings, send=args.send)
    print(text)
    return code


def produce(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from dispatcher.kafka.clients import check_reachable

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
    topic = args.topic or settings.topics.events[0]
    check_reachable(settings, timeout=10)
    producer = Producer({**settings.kafka_config(), "logger": KAFKA})
    key = args.key.encode() if args.key else None
    if args.avro:
        from dispatcher.kafka.avro import produce_value
        from dispatcher.model.event import Event

        value, content_type = produce_value(
            Event.from_dict(event), topic=topic, schema_registry=settings.schema_registry
        )
        producer.produce(topic, value=value, key=key, headers=[("content-type", content_type)])
    elif args.binary:
        headers: list[tuple[str, str | bytes | None]] = [
            (f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data"
        ]
        headers.append(("content-type", b"application/json"))
        producer.produce(topic, value=json.dumps(data).encode(), key=key, headers=headers)
    else:
        producer.produce(
            topic,
            value=json.dumps(event).encode(),
            key=key,
            headers=[("content-type", b"application/cloudevents+json")],
        )
    if producer.flush(15):
        raise ConfigError(f"event not acknowledged by Kafka ({topic})")
    print(json.dumps({"topic": topic, "id": event["id"], "type": args.type}))
    return 0


def decrypt(args: argparse.Namespace) -> int:
    from dispatcher.config.secrets import resolve
    from dispatcher.errors import DecryptionError
    from dispatcher.security.encryption import decrypt_payload

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
