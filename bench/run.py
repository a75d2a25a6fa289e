"""`python -m bench`: start the broker and the receivers, run every scenario, write the results."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import distributions, version
from pathlib import Path
from typing import Any

from bench import report
from bench.ceiling import wrk
from bench.contenders import (
    CAMEL,
    DISPATCHER_1,
    DISPATCHER_1_NO_ATTEMPTS,
    DISPATCHER_1_UNPINNED,
    DISPATCHER_2,
    DISPATCHER_OTEL,
    FLOOR,
    NAIVE,
    QUEUE_MODES,
    QUIX,
    QUIX_PYTHON,
    Contender,
)
from bench.kafka import Events
from bench.receiver import ECHO_MODULE, HangingServer, Nginx
from bench.scenarios import Bench, Scenario, rss_in_flight
from bench.scenarios import run as run_scenario
from bench.warmup import warm_broker
from bench.workload import ENCRYPTION_KEY, REALISTIC_CHECKS, hook
from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.otlp import otlp_receiver

HERE = Path(__file__).resolve().parent
FAST_CONCURRENCY = 200
BROKER_JVM_OPTS = "-XX:+UseSerialGC -Xshare:auto -Djava.awt.headless=true"
COMMON_RATE = 400.0  # s1 latency with every contender at this load (the naive loop's is ~700/s)
QUEUE_CONCURRENCY = 100  # s5: per hook, per worker
QUEUE_EVENTS = 10_000  # s5: per worker in share mode; ~20 s at 100 x 200 ms per busy worker
# s3's ratio compares hook A beside hook B with hook A alone. At 20,000 events a run lasts ~3 s,
# and the same run's rate moved by +-10% from round to round (6,608-7,880/s), which moved the
# ratio by as much as the ~6% that hook B costs: ~9 s windows for both sides of that ratio.
ISOLATION_EVENTS = 60_000


Turn = tuple[tuple[Scenario, Contender], ...]
"""Runs taken in turn. A turn of two or more runs is taken `--repeat` times over, its runs
alternated, so a ratio between them compares runs made side by side: the machine's own speed
drifts by a tenth within minutes. A turn belongs to its last run's scenario (`--only`)."""


def scenarios(nginx: Nginx, hanging: HangingServer, scale: float) -> list[Turn]:
    """Scenarios 1-6 and who runs each, in order; `scale` shrinks the event counts (a smoke run)."""

    def n(count: int, least: int = 1) -> int:
        return max(int(count * scale), least)

    fast = hook("a", nginx.url("/fast"), concurrency=FAST_CONCURRENCY, timeout="5s")
    s1 = Scenario(
        key="s1",
        title="fast endpoint, 12 partitions, JSON field mapping + HMAC",
        partitions=12,
        hooks=(fast,),
        measured="a",
        url=nginx.url("/fast"),
        timeout=5.0,
        warmup=n(1000, 50),
        count=n(20_000, 500),
        counts={"naive": n(2000, 200)},  # one at a time: its rate does not depend on the count
        warmups={"naive": n(200, 20)},
        common_rate=COMMON_RATE,
    )
    s2 = Scenario(
        key="s2",
        title="slow endpoint (200 ms), 1 partition, concurrency 500",
        partitions=1,
        hooks=(hook("a", nginx.url("/slow"), concurrency=500, timeout="5s"),),
        measured="a",
        url=nginx.url("/slow"),
        timeout=5.0,
        warmup=n(1000, 100),
        count=n(20_000, 1000),
        latency=frozenset(),
        counts={"naive": 20, "quix": 20, "camel": 20},
        warmups={"naive": 5, "quix": 5, "camel": 5},
    )
    hanging_hook = hook("b", hanging.url("/hook"), concurrency=50, timeout="1s")
    s3 = Scenario(
        key="s3",
        title="isolation: hook A fast, hook B hanging (1 s timeout), same events",
        partitions=12,
        hooks=(fast, hanging_hook),
        measured="a",
        url=f"{nginx.url('/fast')},{hanging.url('/hook')}",
        timeout=1.0,
        warmup=n(1000, 50),
        count=n(ISOLATION_EVENTS, 500),
        latency=frozenset({"dispatcher"}),
        counts={"naive": 5, "quix": 5, "camel": 5},
        warmups={"naive": 2, "quix": 2, "camel": 2},
    )
    encrypted = {
        **fast,
        "encryption": {"algorithm": "A256GCM", "key": ENCRYPTION_KEY, "key_id": "bench-1"},
    }
    s4 = Scenario(
        key="s4",
        title="s1 with A256GCM encryption",
        partitions=12,
        hooks=(encrypted,),
        measured="a",
        url=nginx.url("/fast"),
        timeout=5.0,
        warmup=n(1000, 50),
        count=n(20_000, 500),
    )
    # Scenario 1's answer is nginx's 28 bytes, its hook checking the status only: here the
    # answer is a payment provider's (a kilobyte of JSON with a link, nineteen headers), which
    # the hook checks and captures from, and which each attempt record carries an excerpt of
    s6 = Scenario(
        key="s6",
        title="s1 with a payment provider's answers, checked and captured",
        partitions=12,
        hooks=(
            hook(
                "a",
                nginx.url("/realistic"),
                concurrency=FAST_CONCURRENCY,
                timeout="5s",
                **REALISTIC_CHECKS,
            ),
        ),
        measured="a",
        url=nginx.url("/realistic"),
        timeout=5.0,
        warmup=n(1000, 50),
        count=n(20_000, 500),
        latency=frozenset(),
    )
    # Queue mode (issue 23): one partition keeps one worker of a consumer group busy however
    # many run; a share group hands records of that partition to every worker. The backlog grows
    # with the workers in share mode, so each run has ~20 s of load at the ideal rate.
    s5 = Scenario(
        key="s5",
        title=(
            f"queue modes: 200 ms endpoint, 1 partition, concurrency {QUEUE_CONCURRENCY}"
            " per worker, 1-3 workers, consume: group vs share"
        ),
        partitions=1,
        hooks=(hook("a", nginx.url("/slow"), concurrency=QUEUE_CONCURRENCY, timeout="5s"),),
        measured="a",
        url=nginx.url("/slow"),
        timeout=5.0,
        warmup=n(1000, 100),
        count=n(QUEUE_EVENTS, 300),
        latency=frozenset(),
        counts={
            c.key: n(QUEUE_EVENTS * c.workers, 300 * c.workers) for c in QUEUE_MODES if c.shares
        },
    )

    def each(scenario: Scenario, *contenders: Contender) -> list[Turn]:
        return [((scenario, c),) for c in contenders]

    alone = replace(s1, count=s3.count)  # hook A alone, the baseline of s3's ratio

    return [
        # s1 w1 / the naive loop, / Quix Streams, / the floor and pinned / not pinned, by round
        ((s1, NAIVE), (s1, QUIX), (s1, FLOOR), (s1, DISPATCHER_1), (s1, DISPATCHER_1_UNPINNED)),
        *each(s1, CAMEL, DISPATCHER_1_NO_ATTEMPTS, DISPATCHER_OTEL, DISPATCHER_2),
        *each(s2, NAIVE, QUIX, CAMEL, DISPATCHER_1),
        *each(s3, NAIVE, QUIX, CAMEL),
        ((alone, DISPATCHER_1), (s3, DISPATCHER_1)),  # hook A alone, then beside hook B
        *each(s3, DISPATCHER_2),
        *each(s4, DISPATCHER_1, DISPATCHER_2),
        *each(s5, *QUEUE_MODES),
        ((s1, DISPATCHER_1), (s6, DISPATCHER_1)),  # the same worker, the two answers in turn
    ]


def rss_scenario(nginx: Nginx, target: int) -> Scenario:
    return Scenario(
        key="rss",
        title=f"{target:,} requests held open by the receiver",
        partitions=12,
        hooks=(hook("a", nginx.url("/hold"), concurrency=target, timeout="60s"),),
        measured="a",
        url=nginx.url("/hold"),
        timeout=60.0,
        warmup=0,
        count=target,
        settings={"drain_timeout": "1s"},
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages: dict[str, str | None] = {}
    for name in (
        "dugaa-dispatcher",
        "aiohttp",
        "uvloop",
        "orjson",
        "httpx",
        "confluent-kafka",
    ):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    # the Quix Streams contender's own venv (its confluent-kafka is older)
    quix = {d.metadata["Name"].lower(): d.version for d in distributions(path=_quix_packages())}
    packages["quixstreams"] = quix.get("quixstreams")
    packages["confluent-kafka (quix)"] = quix.get("confluent-kafka") or quix.get("confluent_kafka")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "packages": packages,
        "broker_jvm_opts": os.environ.get("KAFKA_JVM_OPTS"),
    }


def _quix_packages() -> list[str]:
    return [str(p) for p in QUIX_PYTHON.parent.parent.glob("lib/python*/site-packages")]


def check_tools() -> None:
    missing = [
        t
        for t in ("nginx", "wrk")
        if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()
    ]
    if not ECHO_MODULE.exists():
        missing.append(str(ECHO_MODULE))
    if missing:
        sys.exit(
            f"bench: missing {', '.join(missing)}: run `bash bench/install.sh` (or `make bench`)"
        )


def _take(
    bench: Bench, scenario: Scenario, contender: Contender, owner: str, number: int
) -> dict[str, Any]:
    """One run of a turn that belongs to scenario `owner`, in round `number`: what it measured,
    or its error. Latency is paced in the first round only, and never in a run of another
    scenario's turn (there it is the baseline of a ratio)."""
    beside = None if scenario.key == owner else owner
    print(
        f"bench: {scenario.key} {scenario.title}: {contender.name}"
        + (f" (baseline of {beside})" if beside else "")
        + (f", round {number + 1}" if number else ""),
        file=sys.stderr,
    )
    try:
        result = run_scenario(bench, scenario, contender, paced=number == 0 and beside is None)
    except Exception as exc:
        traceback.print_exc()
        result = {
            "scenario": scenario.key,
            "contender": contender.name,
            "workers": contender.workers,
            "consume": contender.consume,
            "error": str(exc),
        }
    result.update(round=number, beside=beside)
    print(f"    {json.dumps(result)}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply event counts (0.1: a smoke run)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenarios to run: s1,s2,s3,s4,s5,s6,rss"
    )
    parser.add_argument(
        "--in-flight", type=int, default=5000, help="requests held open for the RSS scenario"
    )
    parser.add_argument(
        "--contenders",
        default="",
        help="comma-separated contenders to run: naive,quix,camel,floor,dispatcher1,dispatcher2"
        " (s1 also: dispatcher1-noattempts, without the attempts topic;"
        " dispatcher1-unpinned, with cpu_affinity off)"
        " (s5 also: dispatcher3, dispatcher1-share, dispatcher2-share, dispatcher3-share;"
        " default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of each alternated turn (s1: Quix Streams, one worker, one worker with"
        " cpu_affinity off; s3: one worker without and with hook B); a ratio between runs of a"
        " turn is the median over the rounds",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each `--workers 1` main phase (collapsed stacks in bench/work/)",
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="where the results go"
    )
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    check_tools()
    # The broker as it runs in production, with the JIT's optimizing tier (tests and the demo
    # stop at the quick one, C1, for a fast start): on C1 it took a whole core at 1,000-2,000
    # paced events/s, on two cores it shares with the contender, and the half-rate latencies
    # measured the broker's queue.
    os.environ.setdefault("KAFKA_JVM_OPTS", BROKER_JVM_OPTS)
    # thousands of connections at once, on both sides of loopback
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    only = {s for s in args.only.split(",") if s}
    chosen = {c for c in args.contenders.split(",") if c}
    started = time.monotonic()
    now = datetime.now(UTC)
    work = HERE / "work" / now.strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d"),
        "started_at": now.isoformat(timespec="seconds"),
        # `make bench` runs `python -m bench` with no argument; any argument is named
        "command": " ".join(["python -m bench", *arguments]) if arguments else "make bench",
        "machine": machine(),
        "scale": args.scale,
        "runs": [],
    }
    kafka = LocalKafka()
    print(f"bench: starting the broker (logs and configs in {work})", file=sys.stderr)
    broker_directory = tempfile.mkdtemp(prefix="bench-kafka-")
    bootstrap = kafka.start(broker_directory)
    try:
        broker_pid = kafka.pid()
        if broker_pid is not None:
            print("bench: warming the broker until its JIT compiler is quiet", file=sys.stderr)
            data["broker_warmup"] = warm_broker(bootstrap, broker_pid)
            print(f"    {json.dumps(data['broker_warmup'])}", file=sys.stderr)
        with Nginx() as nginx, HangingServer() as hanging, otlp_receiver() as sink:
            print("bench: ceiling (wrk)", file=sys.stderr)
            wrk(nginx.url("/fast"), 100, 1)  # warm-up
            data["ceiling"] = {
                "fast": wrk(nginx.url("/fast"), 100, 5),
                "slow": wrk(nginx.url("/slow"), 500, 5),
            }
            bench = Bench(
                bootstrap, Events(bootstrap), nginx.pid, work, args.profile, sink, broker_pid
            )
            for turn in scenarios(nginx, hanging, args.scale):
                owner = turn[-1][0].key
                if only and owner not in only:
                    continue
                taken = [(s, c) for s, c in turn if not chosen or c.key in chosen]
                rounds = args.repeat if len(turn) > 1 else 1
                for number in range(rounds):
                    for scenario, contender in taken:
                        data["runs"].append(_take(bench, scenario, contender, owner, number))
            if not only or "rss" in only:
                print(f"bench: rss with {args.in_flight:,} in flight", file=sys.stderr)
                try:
                    data["rss"] = rss_in_flight(
                        bench, rss_scenario(nginx, args.in_flight), DISPATCHER_1, args.in_flight
                    )
                except Exception as exc:
                    traceback.print_exc()
                    data["rss"] = {"contender": DISPATCHER_1.name, "error": str(exc)}
                print(f"    {json.dumps(data['rss'])}", file=sys.stderr)
            bench.events.close()
    finally:
        kafka.stop()
        shutil.rmtree(broker_directory, ignore_errors=True)
    data["seconds"] = round(time.monotonic() - started, 1)
    args.output.mkdir(parents=True, exist_ok=True)
    # a partial run (`--only`) never overwrites the day's full results
    stem = args.output / (data["date"] + "".join(f"-{key}" for key in sorted(only)))
    table, written = report.write(data, stem)
    print(f"\nbench: {data['seconds']:.0f} s; wrote {stem}{written}\n", file=sys.stderr)
    print(table)
    return 0
