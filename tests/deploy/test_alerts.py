"""Alert rules: promtool accepts them and its unit tests fire each alert and keep healthy series
silent; every alert carries a summary and a runbook link to a section that exists."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from deploy_tools import REPO, require_tool
from metric_names import ALERTS, alert_queries

TESTS = ALERTS.with_name("alerts.test.yml")
RUNBOOK = REPO / "deploy" / "RUNBOOK.md"
ALERTS_EXPECTED = {
    "DispatcherConsumerLagGrowing",
    "DispatcherDeadLetters",
    "DispatcherHookErrorRatioHigh",
    "DispatcherCircuitOpen",
    "DispatcherNoReadyWorkers",
    "DispatcherRecordsRedelivered",
    "DispatcherHookPaused",
    "DispatcherHookFailing",
    "DispatcherHookUnusable",
    "DispatcherAttemptRecordsDropped",
    "DispatcherOutcomeRecordsRefused",
    "DispatcherSchemaRegistryUnavailable",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path) -> None:
    """The unit tests have teeth: raising the error-ratio threshold makes them fail."""
    broken = ALERTS.read_text().replace(") > 0.2", ") > 0.9")
    assert broken != ALERTS.read_text()
    (tmp_path / ALERTS.name).write_text(broken)
    (tmp_path / TESTS.name).write_text(TESTS.read_text())
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DispatcherHookErrorRatioHigh" in result.stdout + result.stderr


def test_every_query_selects_the_series_of_the_job_compose_scrapes() -> None:
    """Each series an alert reads is selected by the job docker-compose's Prometheus scrapes,
    never every dispatcher's: the chart puts its release's own labels in its place."""
    scrape = yaml.safe_load((ALERTS.parent / "prometheus.yml").read_text())
    (job,) = [config["job_name"] for config in scrape["scrape_configs"]]
    for alert, expr in alert_queries().items():
        selections = re.findall(r"\bdispatcher_[a-z0-9_]*[a-z0-9]\b", expr)
        assert selections, alert
        assert expr.count(f'{{job="{job}"') == len(selections), alert


def test_the_alerts_exist() -> None:
    assert set(alert_queries()) == ALERTS_EXPECTED


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_summary_severity_and_runbook_section(rule: dict) -> None:
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert rule["labels"]["severity"] in {"warning", "critical"}
    url = annotations["runbook_url"]
    assert url == f"deploy/RUNBOOK.md#{rule['alert'].lower()}"
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings


@pytest.mark.parametrize("alert", sorted(ALERTS_EXPECTED))
def test_each_alert_has_a_firing_and_a_silent_unit_test(alert: str) -> None:
    cases = [
        case
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert
    ]
    assert any(case["exp_alerts"] for case in cases), f"no test where {alert} fires"
    assert any(not case["exp_alerts"] for case in cases), f"no test where {alert} stays silent"


def test_runbook_has_a_section_per_alert_and_no_other() -> None:
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert sorted(headings) == sorted(ALERTS_EXPECTED)
