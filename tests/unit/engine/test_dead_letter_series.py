"""`dispatcher_dead_letters_total{hook, error_kind}` is exported at 0 from a worker's start for
every hook in force and every kind it can get, so an alert's increase() sees the first dead
letter; the series follow the hooks, and stay bounded by them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.worker import Worker
from dispatcher.errors import PAIR_ERROR_KINDS
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str) -> Hook:
    return Hook.from_dict({"id": hook_id, "events": ["order.*"], "url": "https://x.example.com"})


def series(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["hook"], s.labels["error_kind"]): s.value
        for family in metrics.dead_letters.collect()
        for s in family.samples
        if s.name == "dispatcher_dead_letters_total"
    }


def worker(hooks: list[Hook], consume: str = "group") -> Worker:
    metrics = Metrics(CollectorRegistry())
    return Worker(Settings(consume=consume), HookIndex(hooks), metrics=metrics)


def test_every_hook_and_kind_is_exported_at_0_before_the_first_dead_letter() -> None:
    found = series(worker([hook("sms-ke"), hook("tax")]).metrics)
    group_kinds = [k for k in PAIR_ERROR_KINDS if k != "redelivered"]
    expected = {(h, k): 0.0 for h in ("sms-ke", "tax") for k in group_kinds}
    expected |= {("", "decode"): 0.0, ("", "internal"): 0.0}
    assert found == expected
    assert "redelivered" in PAIR_ERROR_KINDS  # a pair's kind in queue mode only


def test_in_queue_mode_a_hook_may_also_get_redelivered() -> None:
    found = series(worker([hook("sms-ke")], consume="share").metrics)
    assert found[("sms-ke", "redelivered")] == 0.0


def test_the_series_follow_the_hooks_and_keep_what_was_counted() -> None:
    w = worker([hook("sms-ke"), hook("tax")])
    w.metrics.dead_letters.labels("tax", "timeout").inc()
    w.set_hooks(HookIndex([hook("sms-ke"), hook("crm")]))
    found = series(w.metrics)
    assert {h for h, _ in found} == {"", "sms-ke", "crm", "tax"}
    assert [k for (h, k) in found if h == "tax"] == ["timeout"]  # its zeros are gone
    assert found[("tax", "timeout")] == 1.0
    assert found[("crm", "http_status")] == 0.0


def deliveries(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["hook"], s.labels["outcome"]): s.value
        for family in metrics.deliveries.collect()
        for s in family.samples
        if s.name == "dispatcher_deliveries_total"
    }


def test_each_hook_s_deliveries_are_exported_at_0_from_a_worker_s_start() -> None:
    """They appeared with a hook's first outcome, at 1: the dashboard's rates and its
    "Dead-lettered (1h)", increase()s, missed each hook's first outcome after a worker's start
    (a pod's restart, a new hook), so one dead letter there read 0."""
    found = deliveries(worker([hook("sms-ke"), hook("tax")]).metrics)
    assert found == {
        (h, outcome): 0.0 for h in ("sms-ke", "tax") for outcome in ("delivered", "dead_lettered")
    }


def test_the_delivery_series_follow_the_hooks_and_keep_what_was_counted() -> None:
    w = worker([hook("sms-ke"), hook("tax"), hook("erp")])
    w.metrics.hook("tax").outcomes["delivered"].inc()
    w.set_hooks(HookIndex([hook("sms-ke"), hook("crm")]))
    found = deliveries(w.metrics)
    assert {h for h, _ in found} == {"sms-ke", "crm", "tax"}  # erp's zeros are gone
    assert found[("tax", "delivered")] == 1.0
    assert ("tax", "dead_lettered") not in found
    assert found[("crm", "dead_lettered")] == 0.0
    w.metrics.hook("tax").outcomes["dead_lettered"].inc()  # a pair of tax that was in flight
    assert deliveries(w.metrics)[("tax", "dead_lettered")] == 1.0
