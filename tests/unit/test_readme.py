"""What README.md says of the metrics and the configuration keys is what the code has: a user
who reads it sees every series a worker exports and every key the configuration takes."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from dispatcher.config.admin import ADMIN_KEYS, Admin
from dispatcher.config.secrets import SecretScope
from dispatcher.config.settings import DURATIONS, Settings, load_settings
from dispatcher.config.topics import Topics
from dispatcher.errors import ConfigError
from dispatcher.metrics import Metrics
from dispatcher.metrics.tallies import CounterFamily

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
_LISTED = re.compile(r"`(dispatcher_[a-z_]+)(?:\{([a-z_,]*)\})?`")


def section(title: str) -> str:
    """The README's text under `## title`, to the next section."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def listed_metrics() -> dict[str, set[str]]:
    """Each `dispatcher_*{labels}` the Metrics section names, with its labels."""
    listed: dict[str, set[str]] = {}
    for name, labels in _LISTED.findall(section("Metrics")):
        listed.setdefault(name, set()).update(label for label in labels.split(",") if label)
    return listed


def exported_metrics() -> dict[str, set[str]]:
    """Each series a worker's `Metrics` exports, named as a scrape shows it, with its labels
    (read from the metric objects: a labelled series shows none until it is first touched)."""
    exported: dict[str, set[str]] = {}
    for metric in vars(Metrics(CollectorRegistry())).values():
        if isinstance(metric, MetricWrapperBase):
            total = "_total" if metric._type == "counter" else ""
            exported[metric._name + total] = set(metric._labelnames)
        elif hasattr(metric, "labelnames"):  # the delivery loop's tallies
            total = "_total" if isinstance(metric, CounterFamily) else ""
            exported[metric.name + total] = set(metric.labelnames)
    return exported


def test_the_readme_lists_every_metric_a_worker_exports_with_its_labels() -> None:
    assert listed_metrics() == exported_metrics()


def configuration_text() -> str:
    """The configuration file the README shows ("Point it at your Kafka")."""
    text = section("Point it at your Kafka").split("```yaml\n", 1)[1].split("```", 1)[0]
    assert text.startswith("# dispatcher.yaml")
    return text


def load(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`text` loaded as a configuration file, with each variable it names set."""
    for name in re.findall(r"\$\{env:(\w+)\}", text):
        monkeypatch.setenv(name, "x" * 40)
    path = tmp_path / "dispatcher.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(str(path), environ={})


def fields(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_the_readmes_configuration_shows_every_key_the_settings_take_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = configuration_text()
    shown = yaml.safe_load(text)
    assert set(shown) == fields(Settings) - {"source"}  # where the settings were read from
    assert set(shown["topics"]) == fields(Topics)
    assert set(shown["admin"]) == fields(Admin)
    assert set(shown["secrets"]) == fields(SecretScope)
    load(text, tmp_path, monkeypatch)


def durations() -> list[str]:
    """Every key whose value is a duration, dotted below its section."""
    admin = [f"admin.{key}" for key, kind in ADMIN_KEYS.items() if kind == "duration"]
    return [*DURATIONS, *admin, "topics.retry", "topics.attempts_retention"]


def takes_zero(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    outer, _, name = key.rpartition(".")
    value = "[0s]" if key == "topics.retry" else "0s"
    text = f"{outer}:\n  {name}: {value}\n" if outer else f"{name}: {value}\n"
    try:
        load(text, tmp_path, monkeypatch)
    except ConfigError:
        return False
    return True


def test_the_durations_the_readme_says_may_be_0_are_those_that_may(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join(section("Point it at your Kafka").split())  # lines wrapped anywhere
    said = text.split("durations are above 0, but ", 1)[1]
    may = set(re.findall(r"`([a-z_.]+)`", said.split(" may be 0", 1)[0]))
    may.add("topics.attempts_retention")  # 0: the cluster's default, told where it is shown
    taken = {key for key in durations() if takes_zero(key, tmp_path, monkeypatch)}
    assert may == taken
