"""Every dispatcher_* series that the Grafana dashboard and the alert rules query.

`queried_metric_names()` reads deploy/grafana/dispatcher-dashboard.json and
deploy/prometheus/alerts.yml each time, so it never falls out of step with them. The names are
as queried, i.e. as a /metrics scrape shows them: counters with `_total`, histograms as
`_bucket`. A running dispatcher must export each one (with at least one labelled child: a
labelled metric that was never touched is absent from the scrape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dispatcher-dashboard.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"

_NAME = re.compile(r"\bdispatcher_[a-z0-9_]*[a-z0-9]\b")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard_queries(path: Path = DASHBOARD) -> list[str]:
    """Every PromQL query of the dashboard: panel targets and template variables."""
    dashboard = json.loads(path.read_text())
    queries: list[str] = []
    for panel in _panels(dashboard.get("panels", [])):
        queries.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def alert_queries(path: Path = ALERTS) -> dict[str, str]:
    """Alert name -> its PromQL expression."""
    rules = yaml.safe_load(path.read_text())
    return {
        rule["alert"]: rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def names_in(query: str) -> set[str]:
    """The dispatcher_* metric names a PromQL query mentions."""
    return set(_NAME.findall(query))


def queried_metric_names() -> list[str]:
    """Sorted dispatcher_* series names that the dashboard and the alerts query."""
    names: set[str] = set()
    for query in [*dashboard_queries(), *alert_queries().values()]:
        names |= names_in(query)
    return sorted(names)


def family_name(series: str) -> str:
    """The metric family of a series name: a histogram's `_bucket` etc. stripped."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))
