"""`dispatcher_hook_unusable{hook}`: 1 while a worker holds a hook as unusable (its pairs are
dead-lettered as config), 0 for every other hook in force from the worker's start, and gone
with the hook."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.worker import Worker
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str, unusable: str | None = None) -> Hook:
    raw = {"id": hook_id, "events": ["order.*"], "url": "https://x.example.com"}
    return dataclasses.replace(Hook.from_dict(raw), unusable=unusable)


def gauge(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["hook"]: s.value
        for family in metrics.hook_unusable.collect()
        for s in family.samples
        if s.name == "dispatcher_hook_unusable"
    }


def test_an_unusable_hook_is_1_and_every_other_hook_in_force_0_from_the_start() -> None:
    metrics = Metrics(CollectorRegistry())
    Worker(Settings(), HookIndex([hook("crm"), hook("erp", "no token")]), metrics=metrics)
    assert gauge(metrics) == {"crm": 0.0, "erp": 1.0}
    assert metrics.registry.get_sample_value("dispatcher_hook_unusable", {"hook": "erp"}) == 1.0


def test_the_gauge_follows_the_hooks_set_cleared_and_removed_with_the_hook() -> None:
    metrics = Metrics(CollectorRegistry())
    worker = Worker(Settings(), HookIndex([hook("crm"), hook("erp")]), metrics=metrics)
    worker.set_hooks(HookIndex([hook("crm"), hook("erp", "its token does not resolve here")]))
    assert gauge(metrics) == {"crm": 0.0, "erp": 1.0}
    worker.set_hooks(HookIndex([hook("crm"), hook("erp")]))  # a definition that loads stored
    assert gauge(metrics) == {"crm": 0.0, "erp": 0.0}
    worker.set_hooks(HookIndex([hook("crm", "ordered by key"), hook("sms")]))  # erp deleted
    assert gauge(metrics) == {"crm": 1.0, "sms": 0.0}
