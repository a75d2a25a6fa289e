"""The dashboard and the alerts query only metrics that the dispatcher promises to export."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from metric_names import (
    DASHBOARD,
    alert_queries,
    dashboard_queries,
    family_name,
    names_in,
    queried_metric_names,
)

# Contract section 7 (queue mode's share records included), plus the series the operations
# work added (dead letters by error kind, readiness, failing hooks), with their Prometheus types.
KNOWN_METRICS = {
    "dispatcher_events_consumed": "counter",
    "dispatcher_deliveries": "counter",
    "dispatcher_delivery_attempts": "counter",
    "dispatcher_delivery_duration_seconds": "histogram",
    "dispatcher_event_to_delivery_seconds": "histogram",
    "dispatcher_inflight_deliveries": "gauge",
    "dispatcher_circuit_open": "gauge",
    "dispatcher_retries_scheduled": "counter",
    "dispatcher_consumer_lag": "gauge",
    "dispatcher_hooks": "gauge",
    "dispatcher_dead_letters": "counter",
    "dispatcher_ready": "gauge",
    "dispatcher_share_records": "counter",
    "dispatcher_hook_paused": "gauge",
    "dispatcher_hook_failing": "gauge",
    "dispatcher_hook_unusable": "gauge",
    "dispatcher_attempt_records_dropped": "counter",
    "dispatcher_outcome_records_refused": "counter",
    "dispatcher_registry_held_partitions": "gauge",
    "dispatcher_events_filtered": "counter",
    "dispatcher_decode_failures": "counter",
    "dispatcher_encryptions": "counter",
}
KNOWN_LABELS = {
    "dispatcher_events_consumed": {"topic"},
    "dispatcher_deliveries": {"hook", "outcome"},
    "dispatcher_delivery_attempts": {"hook", "result"},
    "dispatcher_delivery_duration_seconds": {"hook", "le"},
    "dispatcher_event_to_delivery_seconds": {"hook", "le"},
    "dispatcher_inflight_deliveries": {"hook"},
    "dispatcher_circuit_open": {"hook"},
    "dispatcher_retries_scheduled": {"hook", "tier"},
    "dispatcher_consumer_lag": {"topic", "partition"},
    "dispatcher_hooks": set(),
    "dispatcher_dead_letters": {"hook", "error_kind"},
    "dispatcher_ready": set(),
    "dispatcher_share_records": {"result"},
    "dispatcher_hook_paused": {"hook"},
    "dispatcher_hook_failing": {"hook"},
    "dispatcher_hook_unusable": {"hook"},
    "dispatcher_attempt_records_dropped": {"reason"},
    "dispatcher_outcome_records_refused": {"topic"},
    "dispatcher_registry_held_partitions": set(),
    "dispatcher_events_filtered": {"hook"},
    "dispatcher_decode_failures": {"topic"},
    "dispatcher_encryptions": {"hook"},
}
# Labels the scrape gives every series (the target's job and address; on Kubernetes, its
# namespace), beside the metric's own.
SCRAPE_LABELS = {"job", "instance", "namespace"}
LABEL_VALUES = {
    "outcome": {"delivered", "dead_lettered"},
    "result": {"2xx", "3xx", "4xx", "5xx", "timeout", "network", "invalid"},
    "error_kind": {
        "http_status",
        "timeout",
        "network",
        "response_invalid",
        "render",
        "auth",
        "blocked",
        "payload_too_large",
        "decode",
        "expired",
        "config",
        "paused",
        "redelivered",
        "internal",
    },
}
# Labels whose values depend on the metric: (family, label) -> values.
FAMILY_LABEL_VALUES = {
    ("dispatcher_share_records", "result"): {
        "acquired",
        "accepted",
        "released",
        "redelivered",
        "expired",
    },
}


def known_series(name: str) -> bool:
    """True when `name` is a series a known metric family exposes, under its type's suffixes."""
    for family, kind in KNOWN_METRICS.items():
        if kind == "counter" and name == f"{family}_total":
            return True
        if kind == "histogram" and name in {f"{family}_bucket", f"{family}_sum", f"{family}_count"}:
            return True
        if kind == "gauge" and name == family:
            return True
    return False


def family_of(series: str) -> str:
    return family_name(series).removesuffix("_total")


def test_dashboard_and_alerts_query_some_metrics() -> None:
    names = queried_metric_names()
    assert len(names) >= 10
    assert names == sorted(set(names))


@pytest.mark.parametrize("name", queried_metric_names())
def test_queried_metric_is_a_known_dispatcher_series(name: str) -> None:
    assert name.startswith("dispatcher_")
    assert known_series(name), f"{name} is not in the contract's metric list (section 7)"


def test_every_known_metric_family_is_on_the_dashboard() -> None:
    on_dashboard = {family_of(n) for q in dashboard_queries() for n in names_in(q)}
    assert on_dashboard == set(KNOWN_METRICS)


_SELECTOR = re.compile(r"\b(dispatcher_[a-z0-9_]+)\{([^}]*)\}")
_BY = re.compile(r"\bby \(([^)]*)\)")
_MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@pytest.mark.parametrize("query", [*dashboard_queries(), *alert_queries().values()])
def test_queries_use_only_labels_the_metric_has(query: str) -> None:
    for series, matchers in _SELECTOR.findall(query):
        allowed = KNOWN_LABELS[family_of(series)] | SCRAPE_LABELS
        for label, op, value in _MATCHER.findall(matchers):
            assert label in allowed, f"{series} has no label {label}: {query}"
            values = FAMILY_LABEL_VALUES.get((family_of(series), label), LABEL_VALUES.get(label))
            if op == "=" and values is not None:
                assert value in values, f"{label}={value!r} never occurs: {query}"
    families = {family_of(s) for s in names_in(query)}
    allowed_by = set().union(*(KNOWN_LABELS[f] for f in families)) if families else set()
    for group in _BY.findall(query):
        for label in (part.strip() for part in group.split(",")):
            assert label in allowed_by, f"grouping by {label}, which {families} lack: {query}"


ISSUE_PANELS = [
    ("deliveries per hook", "dispatcher_deliveries_total"),
    ("failures per hook", "dispatcher_delivery_attempts_total"),
    ("attempt results", "dispatcher_delivery_attempts_total"),
    ("latency p50 / p99", "dispatcher_delivery_duration_seconds_bucket"),
    ("in flight", "dispatcher_inflight_deliveries"),
    ("open breakers", "dispatcher_circuit_open"),
    ("retries scheduled per tier", "dispatcher_retries_scheduled_total"),
    ("dead letters by error kind", "dispatcher_dead_letters_total"),
    ("consumer lag per partition", "dispatcher_consumer_lag"),
    ("event-to-delivery time", "dispatcher_event_to_delivery_seconds_bucket"),
    ("share-group records", "dispatcher_share_records_total"),
    ("paused and failing hooks", "dispatcher_hook_paused"),
    ("paused and failing hooks", "dispatcher_hook_failing"),
    ("unusable hooks", "dispatcher_hook_unusable"),
    ("attempt status codes per hook", "dispatcher_delivery_attempts_total"),
]


@pytest.mark.parametrize(("title", "metric"), ISSUE_PANELS)
def test_dashboard_has_the_panels_the_issue_asks_for(title: str, metric: str) -> None:
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]
    matching = [p for p in panels if title in p["title"].lower()]
    assert matching, f"no panel titled like {title!r}"
    exprs = " ".join(t["expr"] for p in matching for t in p["targets"])
    assert metric in exprs


def test_latency_panels_show_p50_and_p99() -> None:
    exprs = " ".join(q for q in dashboard_queries() if "histogram_quantile" in q)
    assert "histogram_quantile(0.5," in exprs
    assert "histogram_quantile(0.99," in exprs


def test_dashboard_panels_use_the_datasource_variable_and_unique_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "hook"} <= names
    assert dashboard["uid"] == "dugaa-dispatcher"


_HOOK_VARIABLE = re.compile(r"label_values\(\s*(dispatcher_\w+)(?:\{[^}]*\})?\s*,\s*hook\s*\)")


def test_the_hook_variable_lists_every_hook_in_force_from_a_workers_start() -> None:
    """Over `dispatcher_deliveries_total` it listed only the hooks that had sent something
    since their worker started: one that only failed, was paused (its pairs wait or are
    dead-lettered), was disabled or had no event yet could not be chosen. Its series must be
    one a worker exports for every hook in force from its start, and for nothing else."""
    from prometheus_client import CollectorRegistry

    from dispatcher.config.settings import Settings
    from dispatcher.engine.worker import Worker
    from dispatcher.metrics import Metrics
    from dispatcher.model.hook import Hook
    from dispatcher.pipeline.match import HookIndex

    (variable,) = [
        v for v in json.loads(DASHBOARD.read_text())["templating"]["list"] if v["name"] == "hook"
    ]
    assert variable["definition"] == variable["query"]["query"]
    (series,) = _HOOK_VARIABLE.findall(variable["query"]["query"])
    raw = {"events": ["order.*"], "url": "https://x.example.com"}
    hooks = [
        Hook.from_dict({**raw, "id": "crm"}),
        Hook.from_dict({**raw, "id": "erp", "enabled": False}),
        replace(Hook.from_dict({**raw, "id": "sms"}), unusable="its token does not resolve"),
    ]
    metrics = Metrics(CollectorRegistry())
    Worker(Settings(), HookIndex(hooks), metrics=metrics)  # started, nothing consumed yet
    listed = {
        sample.labels["hook"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == series
    }
    assert listed == {"crm", "erp", "sms"}, f"label_values({series}, hook) lists {listed}"


RELEASE_SELECTOR = '{namespace=~"$namespace",job=~"$job"'


@pytest.mark.parametrize(
    "query", [q for q in dashboard_queries() if not q.endswith((", namespace)", ", job)"))]
)
def test_every_query_reads_the_chosen_deployment_s_series(query: str) -> None:
    """Two dispatchers scraped by one Prometheus (staging and production, two clients' chart
    releases) were summed in every panel, with no way to pick one: each series a query reads
    is narrowed to the namespace and job chosen at the top."""
    series = re.findall(r"\bdispatcher_[a-z0-9_]*[a-z0-9]\b", query)
    assert series
    assert query.count(RELEASE_SELECTOR) == len(series), query


def test_the_namespace_and_job_variables_list_the_deployments() -> None:
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    for name in ("namespace", "job"):
        variable = variables[name]
        assert variable["query"]["query"].startswith("label_values(dispatcher_ready")
        assert variable["query"]["query"].endswith(f", {name})")
        assert (variable["includeAll"], variable["allValue"]) == (True, ".*")


def test_panels_do_not_overlap() -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


def test_family_name_strips_histogram_suffixes() -> None:
    assert family_name("dispatcher_delivery_duration_seconds_bucket") == (
        "dispatcher_delivery_duration_seconds"
    )
    assert family_name("dispatcher_deliveries_total") == "dispatcher_deliveries_total"


RATE_UNITS = {"ops", "reqps"}


def _override(panel: dict, ref_id: str) -> dict[str, object]:
    """The properties a panel's override sets on the series of query `ref_id`."""
    return {
        prop["id"]: prop["value"]
        for override in panel["fieldConfig"].get("overrides", [])
        if override["matcher"] == {"id": "byFrameRefID", "options": ref_id}
        for prop in override["properties"]
    }


def test_a_count_beside_rates_has_its_own_unit_and_is_not_stacked_on_them() -> None:
    """An increase() is a number of things, not a rate: under a panel's rate unit, stacked on
    its rates, it would read as so many per second and swell their sum."""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel.get("fieldConfig", {}).get("defaults", {}).get("unit") not in RATE_UNITS:
            continue
        for target in panel["targets"]:
            if "increase(" not in target["expr"]:
                continue
            own = _override(panel, target["refId"])
            assert own.get("unit") not in (None, *RATE_UNITS), panel["title"]
            assert own.get("custom.stacking", {}).get("mode") == "none", panel["title"]


def test_the_known_metrics_are_every_family_the_dispatcher_exports() -> None:
    """So a family added to the code is charted too (`dispatcher_events_filtered_total`,
    `dispatcher_decode_failures_total` and `dispatcher_encryptions_total` were on no panel)."""
    from dispatcher.metrics import Metrics

    exported = {family.name: family.type for family in Metrics().registry.collect()}
    assert exported == KNOWN_METRICS
