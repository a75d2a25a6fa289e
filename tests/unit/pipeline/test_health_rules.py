"""The cluster's view of a hook's health from several workers' reports, and the decisions."""

from __future__ import annotations

from dispatcher.model.health import Decision, Report
from dispatcher.pipeline.health import Rules, View, decide, decider, merge

DAY = 86400.0
RULES = Rules(failing_after=300.0, pause_after=DAY)


def report(worker: str, *, ok: float | None = None, first: float | None = None,
           last: float | None = None, error: str = "503") -> Report:  # fmt: skip
    return Report("erp", worker, max(ok or 0, last or 0), ok, first, last, error if last else "")


def test_the_earliest_failure_after_the_latest_success_anywhere_is_failing_since() -> None:
    reports = [
        report("a", ok=100.0, first=200.0, last=900.0, error="a: 503"),
        report("b", first=150.0, last=1000.0, error="b: timeout"),  # its success: never
        report("c", ok=120.0),
    ]
    view = merge(reports, now=1000.0, window=DAY, floor=None)
    assert view == View(last_success=120.0, failing_since=150.0, last_failure=1000.0,
                        last_error="b: timeout")  # fmt: skip
    assert view.failing_for == 850.0


def test_a_success_anywhere_ends_the_failing_spell() -> None:
    reports = [report("a", first=100.0, last=500.0), report("b", ok=600.0)]
    assert merge(reports, now=600.0, window=DAY, floor=None).failing_since is None


def test_failures_before_another_workers_later_success_count_only_from_their_last() -> None:
    reports = [report("a", first=100.0, last=700.0), report("b", ok=600.0)]
    view = merge(reports, now=700.0, window=DAY, floor=None)
    assert (view.failing_since, view.last_failure) == (700.0, 700.0)


def test_a_stale_report_of_a_dead_worker_pins_nothing() -> None:
    dead = report("dead", first=0.0, last=60.0)
    live = report("live", first=2 * DAY, last=2 * DAY + 60)
    view = merge([dead, live], now=2 * DAY + 60, window=DAY, floor=None)
    assert view.failing_since == 2 * DAY  # not 0: the dead worker's view is stale
    assert merge([dead], now=2 * DAY, window=DAY, floor=None) == View()


def test_attempts_before_the_floor_of_a_resume_no_longer_count() -> None:
    reports = [report("a", first=100.0, last=5000.0), report("b", first=4000.0, last=6000.0)]
    view = merge(reports, now=6000.0, window=DAY, floor=5500.0)
    # a's attempts all came before; b's spell began before: only its last failure is after
    assert (view.failing_since, view.last_failure) == (6000.0, 6000.0)
    fresh = [report("c", first=5600.0, last=5700.0), report("d", first=5800.0, last=6000.0)]
    view = merge(reports + fresh, now=6000.0, window=DAY, floor=5500.0)
    assert (view.failing_since, view.last_failure) == (5600.0, 6000.0)


def test_failures_spanning_failing_after_are_told_then_pause_after_pauses() -> None:
    view = View(failing_since=1000.0, last_failure=1000.0 + 300.0, last_error="503")
    (failing,) = decide("erp", "acme", view, RULES, None, now=1301.0)
    assert (failing.state, failing.since, failing.tenant, failing.reason) == (
        "failing", 1000.0, "acme", "auto"
    )  # fmt: skip
    assert decide("erp", "acme", view, RULES, failing, now=1302.0) == []  # told once
    long = View(failing_since=1000.0, last_failure=1000.0 + DAY, last_error="503")
    (paused,) = decide("erp", "acme", long, RULES, failing, now=DAY + 1001)
    assert (paused.state, paused.since, paused.last_error) == ("paused", 1000.0, "503")


def test_a_hook_found_past_pause_after_at_once_is_told_failing_then_paused() -> None:
    long = View(failing_since=0.0, last_failure=DAY)
    assert [d.state for d in decide("erp", None, long, RULES, None, now=DAY)] == [
        "failing",
        "paused",
    ]


def test_two_workers_deciding_at_once_write_the_same_decision() -> None:
    view = View(failing_since=10.0, last_failure=10.0 + DAY)
    one = decide("erp", None, view, RULES, None, now=DAY + 11)
    two = decide("erp", None, view, RULES, None, now=DAY + 11)
    assert [(d.state, d.since) for d in one] == [(d.state, d.since) for d in two]


def test_failures_followed_by_silence_never_pause() -> None:
    view = View(failing_since=0.0, last_failure=60.0)
    assert [d.state for d in decide("erp", None, view, RULES, None, now=10 * DAY)] == []


def test_pause_after_zero_never_pauses_but_failing_is_still_told() -> None:
    rules = Rules.for_hook(0.0, DAY, 300.0)
    assert rules == Rules(failing_after=300.0, pause_after=0.0)
    view = View(failing_since=0.0, last_failure=30 * DAY)
    assert [d.state for d in decide("erp", None, view, rules, None, now=30 * DAY)] == ["failing"]


def test_failing_is_told_after_a_quarter_of_a_short_pause_after() -> None:
    assert Rules.for_hook(8.0, DAY, 300.0) == Rules(failing_after=2.0, pause_after=8.0)
    assert Rules.for_hook(None, DAY, 300.0) == Rules(failing_after=300.0, pause_after=DAY)


def test_only_a_resume_lifts_a_pause_and_a_success_ends_failing_quietly() -> None:
    paused = Decision("erp", "paused", 0.0, DAY)
    healthy_view = View(last_success=DAY + 5)
    assert decide("erp", None, healthy_view, RULES, paused, now=DAY + 6) == []
    failing = Decision("erp", "failing", 0.0, 400.0, floor=50.0)
    (healthy,) = decide("erp", None, healthy_view, RULES, failing, now=DAY + 6)
    assert (healthy.state, healthy.floor) == ("healthy", 50.0)  # the floor is kept


def test_a_resumed_hook_failing_again_is_told_anew() -> None:
    resumed = Decision("erp", "resumed", 0.0, 1000.0, floor=1000.0)
    view = View(failing_since=1100.0, last_failure=1500.0)
    (failing,) = decide("erp", None, view, RULES, resumed, now=1500.0)
    assert (failing.state, failing.since, failing.floor) == ("failing", 1100.0, 1000.0)


def test_no_fresh_report_keeps_a_failing_hook_failing() -> None:
    failing = Decision("erp", "failing", 100.0, 400.0)
    assert decide("erp", None, View(), RULES, failing, now=DAY) == []
    old_success = View(last_success=50.0)  # before the spell: no news
    assert decide("erp", None, old_success, RULES, failing, now=DAY) == []


def test_a_pause_names_the_since_of_the_failing_spell_already_told() -> None:
    failing = Decision("erp", "failing", 100.0, 400.0)
    # this worker's fresh reports begin later (an earlier one went stale): the told since stays
    view = View(failing_since=5000.0, last_failure=100.0 + DAY)
    (paused,) = decide("erp", None, view, RULES, failing, now=DAY + 101)
    assert (paused.state, paused.since) == ("paused", 100.0)


def test_the_decider_is_the_first_by_id_of_the_workers_attempting_lately() -> None:
    reports = [report("c", last=900.0), report("b", ok=1000.0), report("a", last=500.0)]
    assert decider(reports, since=800.0) == "b"  # a's last attempt is too old
    assert decider(reports, since=1001.0) is None
