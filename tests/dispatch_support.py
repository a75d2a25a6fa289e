"""Run the dispatcher against the session broker: configuration files, in-thread and subprocess workers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka_support import Outgoing, create_topic, produce, wait_for

from dispatcher.config.settings import Settings, load_settings
from dispatcher.engine.worker import Worker
from dispatcher.hooks.loader import load_hooks_file
from dispatcher.metrics import Metrics
from dispatcher.pipeline.match import HookIndex
from dispatcher.signals import STACKS_SIGNAL

RUNNING: list[subprocess.Popen[bytes]] = []  # every `dispatcher run` a test started
LOGS: dict[Path, subprocess.Popen[bytes]] = {}  # their logs, kept for the test's report
TAIL_LINES = 60
# A SIGKILLed member's partitions move after its session timeout (45 s by default), and until
# then every rebalance of its group waits for it: short here, well above a heartbeat or two.
FAILOVER: dict[str, Any] = {"kafka": {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500}}


def reap() -> None:
    """Kill what a failed test left running (a passing test stops its own processes)."""
    while RUNNING:
        process = RUNNING.pop()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def log_tails() -> list[tuple[str, str]]:
    """The end of each log of the `dispatcher run` processes the current test started, with
    how each process stands, for the report of a failed test (librdkafka's debug lines left
    out: a failure must show what the worker did, in the part of the output CI keeps)."""
    sections = []
    for path, process in LOGS.items():
        code = process.poll()
        state = "still running" if code is None else f"exited {code}"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        kept = [line[:300] for line in lines if "DEBUG dispatcher.librdkafka" not in line]
        tail = "\n".join(kept[-TAIL_LINES:])
        sections.append((f"{path.name} ({state}, last {TAIL_LINES} lines)", tail))
    return sections


@dataclass
class Deployment:
    """The topics and files of one dispatcher deployment under test (uuid-named topics)."""

    bootstrap: str
    directory: Path
    hooks: list[dict[str, Any]]
    partitions: int = 1
    retry: tuple[str, ...] = ("1s", "2s")
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.events = create_topic(self.bootstrap, f"events-{tag}", self.partitions)
        self.results = f"results-{tag}"
        self.dead_letter = f"dlq-{tag}"
        self.attempts = f"attempts-{tag}"
        self.retry_prefix = f"retry-{tag}"
        self.group = f"dispatcher-{tag}"
        self.health = f"health-{tag}"  # pauses of one deployment never reach another
        self.operations = f"operations-{tag}"
        self.hooks_path = self.directory / f"hooks-{tag}.yaml"
        self.config_path = self.directory / f"dispatcher-{tag}.yaml"
        self.log_path = self.directory / f"{self.group}.log"  # of every `process()`, appended
        self.write()

    def write(self) -> None:
        self.hooks_path.write_text(yaml.safe_dump({"hooks": self.hooks}, sort_keys=False))
        config = {
            "kafka": {"bootstrap.servers": self.bootstrap},
            "group_id": self.group,
            "topics": {
                "events": [self.events],
                "results": self.results,
                "dead_letter": self.dead_letter,
                "retry": list(self.retry),
                "retry_prefix": self.retry_prefix,
                "health": self.health,
                "operations": self.operations,
                "attempts": self.attempts,
            },
            "hooks_file": str(self.hooks_path),
            "http_port": 0,
            "allow_private_networks": True,
            "allow_loopback": True,
            "drain_timeout": "20s",
            **self.extra,
        }
        config["kafka"] = {"bootstrap.servers": self.bootstrap, **self.extra.get("kafka", {})}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def log(self) -> str:
        """What its `dispatcher run` subprocesses have written so far (all to the one log)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def workers_started(self) -> int:
        """How many `dispatcher run` subprocesses of this deployment logged that they are up."""
        return self.log().count("worker started")

    def assignments(self) -> list[str]:
        """The log's 'assigned' lines naming partitions of the events topic."""
        return [line for line in self.log().splitlines() if f"assigned {self.events}[" in line]

    def committed(self, topic: str | None = None, group: str | None = None) -> int:
        """How many records of `topic` (the events) the deployment's group (or `group`) has
        committed, over all partitions."""
        from confluent_kafka import Consumer, TopicPartition

        topic = topic or self.events
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or self.group})
        try:
            ids = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            parts = [TopicPartition(topic, p) for p in ids]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
        finally:
            consumer.close()

    def written(self, topic: str) -> int:
        """How many records `topic` holds (the sum of its partitions' high watermarks)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "watermarks"})
        try:
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts
            )
        finally:
            consumer.close()

    @property
    def settings(self) -> Settings:
        return load_settings(str(self.config_path), environ={})

    def produce_events(self, events: list[dict[str, Any]], keys: list[str] | None = None) -> None:
        records = [
            Outgoing(
                json.dumps(e),
                key=(keys[i] if keys else None),
                headers=(("content-type", b"application/cloudevents+json"),),
            )
            for i, e in enumerate(events)
        ]
        produce(self.bootstrap, self.events, records)

    def produce_raw(self, records: list[Outgoing]) -> None:
        produce(self.bootstrap, self.events, records)

    def started(self) -> tuple[Worker, threading.Thread, list[BaseException]]:
        """A worker running in a thread of this process, its thread, and what its run raised."""
        settings = self.settings
        worker = Worker(
            settings,
            HookIndex(load_hooks_file(settings.hooks_file or "")),
            metrics=Metrics(),
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                worker.run(install_signals=False)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, name="worker", daemon=True)
        thread.start()
        return worker, thread, errors

    @contextmanager
    def worker(self) -> Iterator[Worker]:
        """A worker in a thread of this process; stopped (gracefully) on exit."""
        worker, thread, errors = self.started()
        try:
            yield worker
        finally:
            worker.request_stop()
            thread.join(timeout=60)
        assert not thread.is_alive(), "worker did not stop"
        assert not errors, errors

    def process(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`dispatcher run` in a subprocess (for SIGKILL / SIGTERM tests); `env` adds variables."""
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dispatcher",
                    "run",
                    "--config",
                    str(self.config_path),
                    *args,
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        RUNNING.append(process)
        LOGS[self.log_path] = process
        return process


def free_port() -> int:
    """A loopback port free now (for a server that must be told its port before it starts;
    one that can bind port 0 and say which it took leaves no window for another socket)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status_port(path: Path, timeout: float = 30.0) -> int:
    """The port of /metrics of the worker whose log is `path`, once it logged that it started
    (with `http_port: 0` it binds any free port: no port picked beforehand can be taken
    meanwhile by another socket)."""
    found = wait_for(
        lambda: (
            re.findall(r"/metrics on port (\d+)", path.read_text(errors="replace"))
            if path.exists()
            else []
        ),
        timeout,
        message=f"a worker to start ({path.name})",
    )
    return int(found[-1])


def cloud_event(event_type: str, data: Any, event_id: str | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "source": "/dugaa/tests",
        "time": "2026-11-29T10:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    }


def hook(hook_id: str, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": hook_id, "events": events, "url": url, **extra}


def breaking_hook(url: str) -> dict[str, Any]:
    """A hook whose circuit a failing endpoint opens within its first 20 requests (five at a
    time), and whose pairs then wait in a tier (up to 50 attempts, 10 minutes): for the tests
    of an open circuit."""
    return hook(
        "down", url, ["order.paid"], concurrency=5, retry={"max_attempts": 50, "max_age": "10m"}
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Signal `process` and wait for its exit code. One that does not exit in time is asked
    for its threads' stacks (SIGUSR1: into its log, which a failed test's report shows), then
    killed, and the wait's timeout raised."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(STACKS_SIGNAL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=3)  # it dumps them and goes on: this only gives it the time
        process.kill()
        process.wait(timeout=30)
        raise


def by_key(records: list[Any], field_name: str) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = {}
    for record in records:
        grouped.setdefault(record.json()[field_name], []).append(record)
    return grouped


def wait_ready(worker: Worker, timeout: float = 30.0) -> None:
    wait_for(lambda: worker.metrics.ready._value.get() == 1, timeout, message="worker assigned")


def headers_of(record: Any) -> Mapping[str, bytes | None]:
    return dict(record.headers)


def collect_until(
    bootstrap: str, topic: str, done: Callable[[list[Any]], bool], timeout: float
) -> list[Any]:
    """Reads `topic` from the beginning until `done(records)` holds; TimeoutError after `timeout`."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from kafka_support import Record

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"c-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = wait_for(
            lambda: list(consumer.list_topics(topic, timeout=5).topics[topic].partitions),
            timeout,
            message=f"topic {topic}",
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while not done(records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: condition not met, {len(records)} records read")
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    records.append(Record.from_message(message))
        return records
    finally:
        consumer.close()
