"""Match cost per event with 10,000 hooks: `python -m bench.matching [--hooks N] [--events N]`.

Builds hooks over 1,000 event types (50 domains x 20 events), 100 tenants (a third of the hooks
serve every tenant), 1% glob patterns (`domain7.*`) and filters on a third of them, then times
per event, on one core:
- `cold`: `HookIndex.match(type, tenant)` on a (type, tenant) not seen before (no cache);
- `warm`: the same look-ups again (answered from the cache);
- `targeting`: warm match plus the filter stage (`admit`), i.e. what intake pays per event;
- `scan`: for scale, testing every hook's patterns and tenant one by one.
Writes bench/results/matching-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.filter import admit
from dispatcher.pipeline.match import HookIndex

RESULTS = Path(__file__).parent / "results"
DOMAINS, KINDS, TENANTS = 50, 20, 100


def make_hooks(count: int, rng: random.Random) -> list[Hook]:
    hooks = []
    for i in range(count):
        domain = rng.randrange(DOMAINS)
        glob = rng.random() < 0.01
        raw: dict[str, Any] = {
            "id": f"hook-{i}",
            "events": [
                f"domain{domain}.*" if glob else f"domain{domain}.event{rng.randrange(KINDS)}"
            ],
            "url": f"https://vendor{i}.example.com/hook",
        }
        if rng.random() < 2 / 3:
            raw["tenant"] = f"tenant{rng.randrange(TENANTS)}"
        if rng.random() < 1 / 3:
            raw["filter"] = [
                {"path": "data.country", "in": ["KE", "TZ", "UG"]},
                {"path": "data.total", "gte": rng.choice([10, 100, 1000])},
            ]
        hooks.append(Hook.from_dict(raw))
    return hooks


def make_events(count: int, rng: random.Random) -> list[Event]:
    events = []
    for i in range(count):
        tenant = f"tenant{rng.randrange(TENANTS)}" if rng.random() < 0.9 else None
        event_type = f"domain{rng.randrange(DOMAINS)}.event{rng.randrange(KINDS)}"
        data = {"country": rng.choice(["KE", "TZ", "US"]), "total": rng.randrange(2000) / 1.5}
        events.append(Event(id=str(i), type=event_type, source="bench", tenant=tenant, data=data))
    return events


def per_event(events: list[Event], work: Callable[[Event], object]) -> float:
    """Microseconds per event of `work`, over all `events`."""
    start = time.perf_counter_ns()
    for event in events:
        work(event)
    return (time.perf_counter_ns() - start) / len(events) / 1000


def scan(hooks: list[Hook], event: Event) -> list[Hook]:
    return [
        h
        for h in hooks
        if h.enabled
        and h.tenant in (None, event.tenant)
        and any(fnmatchcase(event.type, p) for p in h.events)
    ]


def measure(hook_count: int, event_count: int, seed: int = 19) -> dict[str, Any]:
    rng = random.Random(seed)
    hooks = make_hooks(hook_count, rng)
    started = time.perf_counter()
    index = HookIndex(hooks)
    build_ms = (time.perf_counter() - started) * 1000
    # Distinct (type, tenant) pairs, so the first pass finds nothing in the cache.
    seen: dict[tuple[str, str | None], Event] = {}
    for event in make_events(event_count * 4, rng):
        seen.setdefault((event.type, event.tenant), event)
    events = list(seen.values())[:event_count]
    cold = per_event(events, lambda e: index.match(e.type, e.tenant))
    warm = per_event(events, lambda e: index.match(e.type, e.tenant))
    targeting = per_event(events, lambda e: admit(index.match(e.type, e.tenant), e))
    matched = sum(len(index.match(e.type, e.tenant)) for e in events) / len(events)
    sample = events[: max(len(events) // 20, 50)]
    linear = per_event(sample, lambda e: scan(hooks, e))
    assert all(
        [h.id for h in scan(hooks, e)] == [h.id for h in index.match(e.type, e.tenant)]
        for e in sample
    ), "the index and the scan disagree"
    return {
        "hooks": hook_count,
        "events": len(events),
        "globbed_hooks": sum(any("*" in p for p in h.events) for h in hooks),
        "filtered_hooks": sum(bool(h.filter) for h in hooks),
        "hooks_matched_per_event": round(matched, 2),
        "index_build_ms": round(build_ms, 1),
        "us_per_event": {
            "cold": round(cold, 2),
            "warm": round(warm, 2),
            "targeting": round(targeting, 2),
            "scan": round(linear, 1),
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def report(result: dict[str, Any]) -> str:
    us = result["us_per_event"]
    return "\n".join(
        [
            f"# Matching events to {result['hooks']:,} hooks ({result['at']})",
            "",
            f"{result['globbed_hooks']} glob hooks, {result['filtered_hooks']} with a filter; "
            f"{result['hooks_matched_per_event']} hooks matched per event on average; "
            f"index built in {result['index_build_ms']} ms. Over {result['events']:,} events "
            f"of distinct (type, tenant), one core, Python {result['python']}:",
            "",
            "| step | µs per event |",
            "| --- | --: |",
            f"| match, not cached (index by exact type + tenant, globs tested) | {us['cold']} |",
            f"| match, cached | {us['warm']} |",
            f"| match + filter (what intake pays) | {us['targeting']} |",
            f"| for scale: testing every hook one by one | {us['scan']} |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matching")
    parser.add_argument("--hooks", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5_000)
    args = parser.parse_args(argv)
    result = measure(args.hooks, args.events)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"matching-{datetime.now(UTC).date().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
