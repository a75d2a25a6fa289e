"""What deploy/RUNBOOK.md points an operator at is there: the dashboard panels and rows it names
by title, and the `result` values of the attempts it tells to look for."""

from __future__ import annotations

import json
import re

from deploy_tools import REPO
from metric_names import DASHBOARD

RUNBOOK = (REPO / "deploy" / "RUNBOOK.md").read_text(encoding="utf-8")
RESULTS = {"2xx", "3xx", "4xx", "5xx", "timeout", "network", "invalid"}  # contract section 7


def section(alert: str) -> str:
    """The runbook's text under `## alert`, to the next section."""
    return RUNBOOK.split(f"\n## {alert}\n", 1)[1].split("\n## ", 1)[0]


def prose(text: str) -> str:
    """`text` without its code: fenced blocks and `spans` (a label value's quotes are code)."""
    return re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", text, flags=re.DOTALL))


def titles() -> set[str]:
    """The dashboard's title and the title of each of its panels and rows."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {dashboard["title"], *(panel["title"] for panel in dashboard["panels"])}


def quoted_names() -> set[str]:
    """What the runbook's prose names in double quotes (a README section it cites aside)."""
    found = re.findall(r'(README )?"([^"]+)"', prose(RUNBOOK))
    return {" ".join(name.split()) for readme, name in found if not readme}


def test_every_panel_or_row_the_runbook_names_is_on_the_dashboard() -> None:
    named = quoted_names()
    assert len(named) >= 8  # the runbook does name panels: the test reads them
    assert sorted(named - titles()) == []


def test_the_statuses_the_runbook_reads_off_attempt_results_are_result_values() -> None:
    """The "Attempt results" panel shows the `result` label: status classes, not statuses."""
    diagnose = section("DispatcherHookErrorRatioHigh").split("**Diagnose.**", 1)[1]
    diagnose = diagnose.split("**Act.**", 1)[0]
    assert '"Attempt results"' in diagnose
    statuses = set(re.findall(r"`(\d(?:xx|\d\d))`", diagnose))
    assert {"5xx", "4xx"} <= statuses
    assert sorted(statuses - RESULTS) == []


def commands() -> list[str]:
    """The runbook's shell commands: its code block's lines and its `spans`, unwrapped."""
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", RUNBOOK, flags=re.DOTALL))
    return [" ".join(command.split()) for command in [*lines, *spans]]


def test_every_kafka_tool_command_names_the_brokers() -> None:
    """Kafka 4's command-line tools refuse to run without `--bootstrap-server`."""
    tools = [c for c in commands() if re.match(r"kafka-[a-z-]+\.sh ", c)]
    assert len(tools) >= 3
    assert [c for c in tools if "--bootstrap-server" not in c] == []


def test_no_command_waits_on_a_port_forward_that_never_returns() -> None:
    """`kubectl port-forward` runs until stopped: a command after `&&` would never run."""
    forwards = [c for c in commands() if "port-forward" in c]
    assert forwards
    assert [c for c in forwards if "&&" in c.split("port-forward", 1)[1]] == []
