"""How each contender is started: the naive loop, the Quix app, the Camel route, the dispatcher
with N workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.receiver import free_port

ROOT = Path(__file__).resolve().parents[1]
CAMEL_JAR = ROOT / "bench" / "camel" / "target" / "camel-peer.jar"  # built by bench/install.sh
CAMEL_HEAP = "-Xmx512m"
# quixstreams pins confluent-kafka below 2.13; the dispatcher needs 2.16 (make bench installs it)
QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
RETRY_TIERS = ["10m", "1h"]  # far enough that no retry comes back during a run


@dataclass(frozen=True, slots=True)
class Contender:
    """One way of delivering the events: `kind` is naive, quix, camel or dispatcher; a
    dispatcher reads its input as a consumer group (`consume: group`) or a share group."""

    name: str
    kind: str
    workers: int = 1
    consume: str = "group"
    attempts: bool = True  # a dispatcher writes the attempts topic (its default)
    traced: bool = False  # exports traces (OTLP, default sampler) to the bench's loopback sink
    pinned: bool = True  # a dispatcher runs with `cpu_affinity: auto` (worker i on CPU i)

    @property
    def key(self) -> str:
        """naive, quix, camel, dispatcher1, dispatcher2, dispatcher2-share,
        dispatcher1-noattempts, dispatcher1-otel, dispatcher1-unpinned: as `--contenders`
        names them."""
        if self.kind != "dispatcher":
            return self.kind
        key = f"dispatcher{self.workers}" + ("-share" if self.shares else "")
        key += ("" if self.attempts else "-noattempts") + ("-otel" if self.traced else "")
        return key + ("" if self.pinned else "-unpinned")

    @property
    def shares(self) -> bool:
        """Reads its input as a share group (queue mode): no partitions, no committed offsets."""
        return self.consume == "share"

    def members(self, partitions: int) -> int:
        """Consumer-group members it runs: Camel runs one consumer per partition."""
        if self.kind == "camel":
            return partitions
        return self.workers if self.kind == "dispatcher" else 1

    def measured_hook(self, scenario_hook: str) -> str:
        """The hook id in the result records that count (the alternatives write their own)."""
        return scenario_hook if self.kind == "dispatcher" else self.kind


NAIVE = Contender("naive loop", "naive")
# bench/floor.py: the least CPU one Python process spends on a delivery, with no guarantee kept
FLOOR = Contender("Python floor", "floor")
QUIX = Contender("Quix Streams", "quix")
CAMEL = Contender("Apache Camel", "camel")
DISPATCHER_1 = Contender("dispatcher --workers 1", "dispatcher", 1)
DISPATCHER_2 = Contender("dispatcher --workers 2", "dispatcher", 2)
# scenario 1 again without attempt records (`topics.attempts: ""`): the attempts topic's cost
DISPATCHER_1_NO_ATTEMPTS = Contender(
    "dispatcher --workers 1, attempts off", "dispatcher", 1, attempts=False
)
# scenario 1 again with its Python threads left to the scheduler (the default, `cpu_affinity:
# off`): what pinning them to one CPU gains
DISPATCHER_1_UNPINNED = Contender(
    "dispatcher --workers 1, cpu_affinity off", "dispatcher", 1, pinned=False
)
# issue 21: what tracing costs when it is on (every pair sampled: no event has a traceparent)
DISPATCHER_OTEL = Contender("dispatcher --workers 1, traced", "dispatcher", 1, traced=True)
# scenario 5: the same dispatcher with 1, 2 and 3 workers in each queue mode
QUEUE_MODES = [
    Contender(f"dispatcher --workers {n}, consume: {mode}", "dispatcher", n, mode)
    for mode in ("group", "share")
    for n in (1, 2, 3)
]


@dataclass(frozen=True, slots=True)
class Launch:
    """Where a contender reads and writes, and its log."""

    bootstrap: str
    topic: str
    results: str
    group: str
    directory: Path
    otlp: Mapping[str, str] = field(default_factory=dict)  # how a traced contender exports
    # to the bench's loopback OTLP/HTTP sink (its environment variables)


def start(
    contender: Contender,
    launch: Launch,
    hooks: list[dict[str, Any]],
    url: str,
    timeout: float,
    partitions: int,
    **settings: Any,
) -> tuple[subprocess.Popen[bytes], int | None]:
    """Starts `contender` as a subprocess; returns it and its metrics port (dispatcher only)."""
    own = ("DISPATCHER_", "OTEL_")  # tracing is on only for a traced contender
    environment = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    environment["PYTHONUNBUFFERED"] = "1"
    if contender.traced:
        environment.update(launch.otlp)
        environment["OTEL_SERVICE_NAME"] = "dispatcher-bench"
    port = None
    if contender.kind == "dispatcher":
        port = free_ports(contender.workers)  # worker i serves /metrics on port + i
        settings = {"consume": contender.consume, **settings}
        if contender.pinned:
            settings["cpu_affinity"] = "auto"
        config = _dispatcher_config(launch, hooks, port, contender.attempts, **settings)
        command = [
            sys.executable,
            "-m",
            "dispatcher",
            "run",
            "--config",
            str(config),
            "--workers",
            str(contender.workers),
        ]
    elif contender.kind == "camel":
        command = [
            "java",
            CAMEL_HEAP,
            "-jar",
            str(CAMEL_JAR),
            launch.bootstrap,
            launch.topic,
            launch.group,
            launch.results,
            url,
            str(timeout),
            str(partitions),
        ]
    else:
        module = {"naive": "bench.naive", "floor": "bench.floor"}.get(
            contender.kind, "bench.quixapp"
        )
        if contender.kind == "quix" and not QUIX_PYTHON.exists():
            raise RuntimeError(f"no {QUIX_PYTHON}: `make bench` installs requirements/quix.lock")
        command = [
            str(QUIX_PYTHON) if contender.kind == "quix" else sys.executable,
            "-m",
            module,
            launch.bootstrap,
            launch.topic,
            launch.group,
            launch.results,
            url,
            str(timeout),
        ]
    log = launch.directory / f"{launch.group}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    return process, port


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports on loopback."""
    for _ in range(100):
        first = free_port()
        if all(_free(first + i) for i in range(1, count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _dispatcher_config(
    launch: Launch, hooks: list[dict[str, Any]], port: int, attempts: bool, **settings: Any
) -> Path:
    hooks_path = launch.directory / f"{launch.group}-hooks.yaml"
    hooks_path.write_text(yaml.safe_dump({"hooks": hooks}, sort_keys=False))
    config = {
        "kafka": {"bootstrap.servers": launch.bootstrap},
        "group_id": launch.group,
        "topics": {
            "events": [launch.topic],
            "results": launch.results,
            "dead_letter": f"{launch.group}-dlq",
            "retry": RETRY_TIERS,
            "retry_prefix": f"{launch.group}-retry",
            "hooks": "",  # no hook store: the hooks file is all there is
            "attempts": f"{launch.group}-attempts" if attempts else "",
        },
        "hooks_file": str(hooks_path),
        "http_port": port,
        "allow_loopback": True,  # the receivers are on loopback
        "drain_timeout": "10s",
        **settings,
    }
    path = launch.directory / f"{launch.group}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
