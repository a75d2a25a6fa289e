"""A running worker exports every series the dashboard and the alerts query, with the labels and
label values they select on; /healthz and /readyz answer as the probes expect (issue 8)."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing, wait_for
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.receiver import Behaviour, Receiver

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from metric_names import alert_queries, dashboard_queries, names_in, queried_metric_names

HOOKS = ("ok", "reject", "flaky", "ordered", "filtered")
DELIVERING = HOOKS[:4]  # "filtered": its filter keeps every event away (no pair, no result)
EVENTS = 4
KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"  # base64url of 32 bytes: an A256GCM key
_SELECTOR = re.compile(r"\b(dispatcher_[a-z0-9_]*[a-z0-9])\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(dispatcher_\w+)(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)")
# Labels Prometheus gives every series it scrapes (its target's job and address; on Kubernetes,
# the namespace): the queries pick a deployment by them, /metrics does not carry them.
SCRAPE_LABELS = {"job", "instance", "namespace"}

Series = dict[str, list[tuple[dict[str, str], float]]]  # sample name -> (labels, value) each


def scrape(base: str) -> Series:
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return series


def problems(series: Series) -> list[str]:
    """What a dashboard panel or an alert would miss in `series`: names, labels, label values."""
    found = [f"{name}: not exported" for name in queried_metric_names() if name not in series]
    for query in [*dashboard_queries(), *alert_queries().values()]:
        grouped = {label.strip() for by in _BY.findall(query) for label in by.split(",")}
        for name in names_in(query):
            exported = series.get(name, [])
            labels = {label for labelset, _ in exported for label in labelset}
            found += [f"{name}: no label {g!r} (by)" for g in sorted(grouped - labels - {""})]
        for name, matchers in _SELECTOR.findall(query):
            exported = series.get(name, [])
            for label, op, value in _MATCHER.findall(matchers):
                if label in SCRAPE_LABELS:
                    continue
                values = {labelset.get(label) for labelset, _ in exported}
                if values == {None}:
                    found.append(f"{name}: no label {label!r} (selector)")
                elif op in ("=", "!=") and "$" not in value and value not in values:
                    found.append(f"{name}: no series with {label}={value!r}")
        for name, label in _LABEL_VALUES.findall(query):
            if label in SCRAPE_LABELS:
                continue
            if not any(label in labelset for labelset, _ in series.get(name, [])):
                found.append(f"{name}: no label {label!r} (label_values)")
    return found


def test_every_series_the_dashboard_and_alerts_query_is_exported_after_deliveries(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    routes = {
        "/ok": Behaviour(),
        "/reject": Behaviour(status=422),
        "/flaky": Behaviour(fail_first=1, fail_status=503),  # each webhook-id fails once
        "/ordered": Behaviour(),
    }
    with Receiver(routes) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [
                hook("ok", f"{receiver.url}/ok", ["order.*"]),
                hook("reject", f"{receiver.url}/reject", ["order.paid"]),
                hook("flaky", f"{receiver.url}/flaky", ["order.paid"]),
                hook(
                    "ordered",
                    f"{receiver.url}/ordered",
                    ["order.paid"],
                    ordering="key",
                    encryption={"algorithm": "A256GCM", "key": KEY, "key_id": "k1"},
                ),
                hook(
                    "filtered",
                    f"{receiver.url}/ok",
                    ["order.paid"],
                    filter=[{"path": "data.i", "gte": EVENTS}],
                ),
            ],
            partitions=2,
            retry=("1s",),
            extra={"local_retries": 0},  # the first 503 goes straight to the 1s tier
        )
        events = [cloud_event("order.paid", {"i": i}) for i in range(EVENTS)]
        deployment.produce_events(events, keys=[f"customer-{i % 2}" for i in range(EVENTS)])
        deployment.produce_raw([Outgoing(b"not an event")])  # a decode dead letter, no hook
        with deployment.worker() as worker:
            collect_until(
                kafka_bootstrap,
                deployment.results,
                lambda rs: len(rs) >= EVENTS * len(DELIVERING),
                60,
            )
            assert worker.status is not None
            base = f"http://127.0.0.1:{worker.status.port}"
            # consumer lag comes with librdkafka's statistics, every 5 s
            series = wait_for(
                lambda: _complete(scrape(base)), 30, message="every queried series exported"
            )
            assert get(f"{base}/healthz") == 200
            assert get(f"{base}/readyz") == 200
    assert problems(series) == []
    for name in queried_metric_names():
        if name.endswith("_bucket"):
            family = name.removesuffix("_bucket")
            assert {f"{family}_sum", f"{family}_count"} <= set(series), family
    assert _value(series, "dispatcher_retries_scheduled_total", hook="flaky", tier="1s") == EVENTS
    assert _value(series, "dispatcher_dead_letters_total", hook="reject") == EVENTS
    assert (
        _value(series, "dispatcher_deliveries_total", hook="flaky", outcome="delivered") == EVENTS
    )
    assert _value(series, "dispatcher_hooks") == len(HOOKS)
    assert _value(series, "dispatcher_events_filtered_total", hook="filtered") == EVENTS
    assert _value(series, "dispatcher_encryptions_total", hook="ordered") == EVENTS
    assert _value(series, "dispatcher_decode_failures_total", topic=deployment.events) == 1
    assert _value(series, "dispatcher_ready") == 1
    hook_labels = {ls["hook"] for samples in series.values() for ls, _ in samples if "hook" in ls}
    # bounded: hook ids, never URLs or event ids; "" for records that are no event (decode,
    # internal), whose dead-letter series are exported at 0 from the start
    assert hook_labels == {*HOOKS, ""}


def _complete(series: Series) -> Series | None:
    return None if problems(series) else series


def _value(series: Series, name: str, **labels: str) -> float:
    """The sum over the samples of `name` whose labels include `labels`."""
    return sum(v for ls, v in series.get(name, []) if labels.items() <= ls.items())


def test_readyz_is_503_until_the_worker_holds_a_partition_and_again_after_stop(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("ok", f"{receiver.url}/ok", ["order.paid"])], retry=()
        )
        deployment.produce_events([cloud_event("order.paid", {"n": 1})])
        with (
            holding_the_partition(kafka_bootstrap, deployment) as release,
            deployment.worker() as worker,
        ):
            wait_for(lambda: worker.status is not None, 30, message="the status server")
            assert worker.status is not None
            base = f"http://127.0.0.1:{worker.status.port}"
            wait_for(
                lambda: members(kafka_bootstrap, deployment.group) == 2,
                30,
                message="the worker joined the group",
            )
            # a member of the group, but with nothing assigned: alive, not ready
            assert get(f"{base}/healthz") == 200
            assert get(f"{base}/readyz") == 503
            assert scrape(base)["dispatcher_ready"] == [({}, 0.0)]
            release()
            wait_for(lambda: get(f"{base}/readyz") == 200, 60, message="ready once assigned")
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60)
        # stopped: partitions revoked on close, so the readiness route answers 503
        status, _, _ = worker.status.answer("GET", "/readyz")
        assert status == 503
        assert worker.metrics.ready._value.get() == 0


@pytest.mark.timeout(300)
def test_readyz_is_503_while_kafka_is_down_and_200_once_it_is_back(
    kafka_bootstrap: str, local_kafka: LocalKafka, tmp_path: Path
) -> None:
    """What the readiness probe and DispatcherNoReadyWorkers (RUNBOOK) go by: with its brokers
    gone past the session timeout a worker has lost its partitions and is not ready; alive all
    along (a restart would not help); ready again once it holds them back."""
    deployment = Deployment(
        kafka_bootstrap,
        tmp_path,
        [hook("ok", "http://127.0.0.1:9/ok", ["order.paid"])],
        retry=(),
        extra={"kafka": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}},
    )
    with deployment.worker() as worker:
        wait_for(lambda: worker.status is not None, 30, message="the status server")
        assert worker.status is not None
        base = f"http://127.0.0.1:{worker.status.port}"
        wait_for(lambda: get(f"{base}/readyz") == 200, 60, message="ready once assigned")
        local_kafka.stop()
        try:
            wait_for(lambda: get(f"{base}/readyz") == 503, 90, message="unready, Kafka gone")
            assert get(f"{base}/healthz") == 200
            assert scrape(base)["dispatcher_ready"] == [({}, 0.0)]
        finally:
            assert local_kafka.start() == kafka_bootstrap
        wait_for(lambda: get(f"{base}/readyz") == 200, 120, message="ready again")


def get(url: str) -> int:
    return httpx.get(url, timeout=10, trust_env=False).status_code


def members(bootstrap: str, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return len(description.members) if str(description.state).endswith("STABLE") else 0


@contextmanager
def holding_the_partition(bootstrap: str, deployment: Deployment) -> Iterator[Callable[[], None]]:
    """Another member of the worker's group holds the events partition (sticky assignment keeps
    it there) until the returned `release()` closes it."""
    assigned = threading.Event()
    released = threading.Event()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": deployment.group,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([deployment.events], on_assign=lambda _c, ps: ps and assigned.set())

    def hold() -> None:
        while not released.is_set():
            consumer.poll(0.05)  # serves rebalances; records read are never committed
        consumer.close()

    thread = threading.Thread(target=hold, name="holder", daemon=True)
    thread.start()

    def release() -> None:
        released.set()
        thread.join(timeout=30)

    try:
        wait_for(assigned.is_set, 30, message="the holder assigned")
        yield release
    finally:
        release()
