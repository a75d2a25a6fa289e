"""The measurement of one contender in one scenario: warm up, drain a backlog, then a paced run.

Deliveries per second: a backlog of `count` events is produced while the contender is stopped;
the clock runs from when it continues until every result record exists and the group's
committed offsets reach the end of every partition (in queue mode, `consume: share`: until the
workers have accepted every record, by their `dispatcher_share_records_total{result="accepted"}`).
CPU seconds and the receiver's CPU cover that same window (after warm-up).
Latency: then `LATENCY_SECONDS` of events paced at half that rate, and (scenarios with a
`common_rate`) as long at that rate for every contender; event-to-delivery is the result's
`completed_at` minus the moment the event was produced.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.contenders import Contender, Launch, start
from bench.kafka import Commits, Events, Group, Results, create_topics, wait_until
from bench.procs import (
    machine_cpu_seconds,
    stopped,
    tree_cpu_seconds,
    tree_peak_rss_mb,
    tree_rss_mb,
    tree_thread_cpu_seconds,
)
from dispatcher.devtools.otlp import exporting_to, span_count
from dispatcher.devtools.receiver import Receiver

RESULT_PARTITIONS = 6
LATENCY_SECONDS = 4.0
MIN_CPU = 0.2
START_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is delivered where: the dispatcher's hooks, and the endpoint the alternatives use."""

    key: str
    title: str
    partitions: int
    hooks: tuple[dict[str, Any], ...]
    measured: str  # the hook whose deliveries are counted
    url: str  # for the naive loop and the Quix app: one per hook, comma-separated
    timeout: float
    warmup: int
    count: int
    latency: frozenset[str] = frozenset({"naive", "quix", "camel", "dispatcher"})  # kinds to pace
    common_rate: float | None = None  # also pace every contender at this rate (events/s)
    counts: dict[str, int] = field(default_factory=dict)  # per contender key, else kind
    warmups: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # dispatcher service settings


@dataclass
class Bench:
    """What every run shares: the broker, the event producer, the receiver's pid, a work dir."""

    bootstrap: str
    events: Events
    receiver_pid: int
    directory: Path
    profile: bool = False  # py-spy the main phase of `dispatcher --workers 1` runs
    otlp: Receiver | None = None  # the loopback OTLP sink of traced contenders
    broker_pid: int | None = None  # the broker's JVM, whose CPU each run reports too


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def run(
    bench: Bench, scenario: Scenario, contender: Contender, paced: bool = True
) -> dict[str, Any]:
    """One contender through one scenario; a dict of what was measured. `paced`: also measure
    latency at a paced rate, where the scenario does for the contender's kind."""
    tag = f"{scenario.key}.{contender.key}.{uuid.uuid4().hex[:6]}"
    launch = Launch(
        bootstrap=bench.bootstrap,
        topic=f"bench-events-{tag}",
        results=f"bench-results-{tag}",
        group=f"bench-{tag}",
        directory=bench.directory,
        otlp=exporting_to(bench.otlp) if bench.otlp is not None else {},
    )
    spans0 = span_count(bench.otlp) if bench.otlp is not None else 0
    create_topics(
        bench.bootstrap, {launch.topic: scenario.partitions, launch.results: RESULT_PARTITIONS}
    )
    hook_id = contender.measured_hook(scenario.measured)
    results = Results(bench.bootstrap, launch.results, RESULT_PARTITIONS)
    process, port = start(
        contender,
        launch,
        list(scenario.hooks),
        scenario.url,
        scenario.timeout,
        scenario.partitions,
        **scenario.settings,
    )
    commits: Commits | ShareAcks
    if contender.shares:
        assert port is not None
        ports = [port + i for i in range(contender.workers)]
        commits = ShareAcks(bench.bootstrap, launch.topic, scenario.partitions, ports)
    else:
        commits = Commits(bench.bootstrap, launch.group, launch.topic, scenario.partitions)
    count = scenario.counts.get(contender.key, scenario.counts.get(contender.kind, scenario.count))
    warmup = scenario.warmups.get(
        contender.key, scenario.warmups.get(contender.kind, scenario.warmup)
    )
    out: dict[str, Any] = {
        "scenario": scenario.key,
        "contender": contender.name,
        "kind": contender.kind,
        "workers": contender.workers,
        "consume": contender.consume if contender.kind == "dispatcher" else None,
        "partitions": scenario.partitions,
        "events": count,
        "warmup_events": warmup,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    group = Group(bench.bootstrap, launch.group, launch.topic)
    try:
        # every member joined and holds its partitions: no rebalance during the measurement
        # (a share group has no assignment to wait for: every worker polled once, so it is in)
        wait_until(
            lambda: (
                _alive(process)
                and (
                    commits.ready()
                    if isinstance(commits, ShareAcks)
                    else group.settled(contender.members(scenario.partitions), scenario.partitions)
                )
            ),
            START_TIMEOUT,
            f"{launch.group} to settle",
            step=0.25,
        )
        _drain(
            bench,
            scenario,
            launch,
            results,
            commits,
            f"{tag}.warm",
            warmup,
            hook_id,
            START_TIMEOUT,
            process,
        )
        spy = _profiler(bench, contender, process, launch) if bench.profile else None
        threads0 = tree_thread_cpu_seconds(process.pid)
        cpu0, receiver0 = tree_cpu_seconds(process.pid), tree_cpu_seconds(bench.receiver_pid)
        broker0, machine0 = _broker_cpu(bench), machine_cpu_seconds()
        accepted0 = commits.accepted() if isinstance(commits, ShareAcks) else []
        started, delivered_at, committed_at = _drain(
            bench,
            scenario,
            launch,
            results,
            commits,
            f"{tag}.main",
            count,
            hook_id,
            60 + count / 50,
            process,
        )
        cpu = tree_cpu_seconds(process.pid) - cpu0
        receiver = tree_cpu_seconds(bench.receiver_pid) - receiver0
        broker = _broker_cpu(bench) - broker0
        busy, every = (b - a for a, b in zip(machine0, machine_cpu_seconds(), strict=True))
        threads = tree_thread_cpu_seconds(process.pid)
        kafka_threads = threads["librdkafka"] - threads0["librdkafka"]
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
            spy.wait(timeout=30)
        elapsed = committed_at - started
        out.update(
            seconds=round(elapsed, 3),
            deliveries_per_second=round(count / elapsed, 1),
            results_per_second=round(count / (delivered_at - started), 1),
            cpu_seconds=round(cpu, 3),
            # /proc counts in 10 ms ticks: below ~0.2 s a per-delivery figure is noise
            cpu_seconds_per_1000=round(1000 * cpu / count, 4) if cpu >= MIN_CPU else None,
            cpu_us_per_delivery=round(1e6 * cpu / count, 1) if cpu >= MIN_CPU else None,
            receiver_cpu_us_per_delivery=round(1e6 * receiver / count, 1),
            broker_cpu_us_per_delivery=round(1e6 * broker / count, 1),
            machine_busy_percent=round(100 * busy / every, 1) if every else None,
            librdkafka_threads_cpu_us_per_delivery=round(1e6 * kafka_threads / count, 1),
            outcomes=dict(results.outcomes[(f"{tag}.main", hook_id)]),
        )
        if paced and contender.kind in scenario.latency:
            rate = max(out["deliveries_per_second"] / 2, 1.0)
            events, p50, p99 = _paced(bench, scenario, launch, results, hook_id, f"{tag}.lat", rate)
            out.update(latency_rate=round(rate, 1), latency_events=events, p50_ms=p50, p99_ms=p99)
            if scenario.common_rate is not None:  # every contender at the same load
                rate = scenario.common_rate
                _, p50, p99 = _paced(bench, scenario, launch, results, hook_id, f"{tag}.com", rate)
                out.update(common_rate=rate, common_p50_ms=p50, common_p99_ms=p99)
        out["peak_rss_mb"] = round(tree_peak_rss_mb(process.pid), 1)
        if isinstance(commits, ShareAcks):
            # how the main phase's records were spread over the workers (worker 0 first)
            after = commits.accepted()
            out["records_per_member"] = [int(b - a) for a, b in zip(accepted0, after, strict=True)]
        else:
            out["partitions_per_member"] = group.shares()
        out["load_average_after"] = round(os.getloadavg()[0], 2)
    finally:
        out["exit_code"] = stop(process)
        results.close()
        commits.close()
    if contender.traced and bench.otlp is not None:  # stopped: its provider exported the rest
        out["spans_exported"] = span_count(bench.otlp) - spans0
    return out


def _profiler(
    bench: Bench, contender: Contender, process: subprocess.Popen[bytes], launch: Launch
) -> subprocess.Popen[bytes] | None:
    """py-spy sampling a single dispatcher process (raw collapsed stacks, for flame graphs)."""
    spy = Path(sys.executable).with_name("py-spy")
    if contender.kind != "dispatcher" or contender.workers != 1 or not spy.exists():
        return None
    output = bench.directory / f"{launch.group}.profile.txt"
    with output.with_suffix(".log").open("wb") as errors:  # why a profile is missing, if it is
        return subprocess.Popen(
            [
                str(spy),
                "record",
                "--nonblocking",  # the process is SIGSTOPped when py-spy starts: no ptrace stops
                "--gil",
                "-f",
                "raw",
                "-r",
                "100",
                "-o",
                str(output),
                "-p",
                str(process.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def _paced(
    bench: Bench,
    scenario: Scenario,
    launch: Launch,
    results: Results,
    hook_id: str,
    tag: str,
    rate: float,
) -> tuple[int, float | None, float | None]:
    """Events produced at `rate` for LATENCY_SECONDS: their count, and p50 and p99 of event
    produced -> `completed_at` in ms."""
    paced = max(int(rate * LATENCY_SECONDS), 10)
    bench.events.paced(launch.topic, scenario.partitions, tag, paced, rate)
    wait_until(lambda: results.count(tag, hook_id) >= paced, 60 + paced / 20, f"{tag}: results")
    completed = results.times(tag, hook_id)
    delays = sorted(
        1000 * (done - bench.events.sent[event_id]) for event_id, done in completed.items()
    )
    return paced, _round(percentile(delays, 0.50)), _round(percentile(delays, 0.99))


def _broker_cpu(bench: Bench) -> float:
    return 0.0 if bench.broker_pid is None else tree_cpu_seconds(bench.broker_pid)


def _alive(process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the contender exited with {process.returncode}; see its log")
    return True


class ShareAcks:
    """Queue mode's stand-in for `Commits`: whether the workers accepted every record of the topic
    (a share group's acknowledgements are not offsets, and this client cannot read them)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, ports: list[int]) -> None:
        self.watermarks = Commits(bootstrap, f"bench-watermarks-{topic}", topic, partitions)
        self.ports = ports

    def ready(self) -> bool:
        return all(_get(f"http://127.0.0.1:{port}/readyz") is not None for port in self.ports)

    def accepted(self) -> list[float]:
        """Records each worker has accepted so far."""
        return [_metric(port, SHARE_ACCEPTED) for port in self.ports]

    def ends(self) -> dict[int, int]:
        return self.watermarks.ends()

    def reached(self, ends: dict[int, int]) -> bool:
        # every record in the topic is one event: accepted once, when all its pairs are written
        return sum(self.accepted()) >= sum(ends.values())

    def close(self) -> None:
        self.watermarks.close()


SHARE_ACCEPTED = 'dispatcher_share_records_total{result="accepted"}'


def _drain(
    bench: Bench,
    scenario: Scenario,
    launch: Launch,
    results: Results,
    commits: Commits | ShareAcks,
    tag: str,
    count: int,
    hook_id: str,
    timeout: float,
    process: subprocess.Popen[bytes],
) -> tuple[float, float, float]:
    """Produce a backlog of `count` while the contender is stopped; the times it was continued,
    its results all existed and its offsets were committed. (Produced while it ran, the backlog
    arrived no faster than this process writes it: about 5,700 events/s, which the dispatcher
    reached, so that rate was measured instead of the contender's.)"""
    with stopped(process.pid):
        bench.events.burst(launch.topic, scenario.partitions, tag, count)
        ends = commits.ends()
    started = time.monotonic()

    def check(condition: Any) -> Any:
        def probe() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{launch.group} exited with {process.returncode}; see its log")
            return bool(condition())

        return probe

    delivered = wait_until(
        check(lambda: results.count(tag, hook_id) >= count), timeout, f"{tag} results"
    )
    committed = wait_until(
        check(lambda: commits.reached(ends)), timeout, f"{tag} commits", step=0.05
    )
    return started, delivered, committed


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def stop(process: subprocess.Popen[bytes], timeout: float = 40.0) -> int:
    """SIGTERM, then SIGKILL if it is not gone within `timeout`; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def rss_in_flight(
    bench: Bench, scenario: Scenario, contender: Contender, target: int
) -> dict[str, Any]:
    """The dispatcher's resident memory while `target` requests are held open by the receiver."""
    tag = f"{scenario.key}.{contender.key}.{uuid.uuid4().hex[:6]}"
    launch = Launch(
        bootstrap=bench.bootstrap,
        topic=f"bench-events-{tag}",
        results=f"bench-results-{tag}",
        group=f"bench-{tag}",
        directory=bench.directory,
    )
    create_topics(
        bench.bootstrap, {launch.topic: scenario.partitions, launch.results: RESULT_PARTITIONS}
    )
    process, port = start(
        contender,
        launch,
        list(scenario.hooks),
        scenario.url,
        scenario.timeout,
        scenario.partitions,
        **scenario.settings,
    )
    metrics = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {
        "scenario": scenario.key,
        "contender": contender.name,
        "target_in_flight": target,
    }
    try:
        wait_until(lambda: _get(f"{metrics}/readyz") is not None, START_TIMEOUT, "ready", 0.2)
        out["idle_rss_mb"] = round(tree_rss_mb(process.pid), 1)
        started = time.monotonic()
        bench.events.burst(launch.topic, scenario.partitions, f"{tag}.main", target)
        wait_until(lambda: _in_flight(metrics) >= target, 60, f"{target} in flight", 0.1)
        out["seconds_to_reach"] = round(time.monotonic() - started, 2)
        out["in_flight"] = _in_flight(metrics)
        out["rss_mb"] = round(tree_rss_mb(process.pid), 1)
        out["peak_rss_mb"] = round(tree_peak_rss_mb(process.pid), 1)
    finally:
        out["exit_code"] = stop(process)
    return out


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


def _get(url: str) -> bytes | None:
    try:
        with _OPENER.open(url, timeout=2) as response:
            return bytes(response.read()) if response.status == 200 else None
    except OSError:
        return None


def _metric(port: int, sample: str) -> float:
    """One sample of a worker's /metrics, `name{labels}` as exposed (0 when absent)."""
    text = (_get(f"http://127.0.0.1:{port}/metrics") or b"").decode()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _in_flight(metrics: str) -> int:
    text = (_get(f"{metrics}/metrics") or b"").decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("dispatcher_inflight_deliveries{")
        )
    )
