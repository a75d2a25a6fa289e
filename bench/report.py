"""The benchmark's outputs: the JSON record, the markdown table with ratios, the PNG chart.

`python -m bench.report FILE.json` writes them again from a results file's runs (its ratios,
table and chart made by this code).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.contenders import DISPATCHER_1, DISPATCHER_OTEL, FLOOR
from bench.warmup import QUIET

IDEAL_SLOW = 2500.0  # concurrency 500 / 200 ms
TARGETS = {  # issue 17
    "cpu_us": 200.0,  # aim: 100
    "vs_naive": 20.0,
    "vs_quix": 4.0,
    "slow": 0.90,
    "isolation": 0.90,
    "rss_mb": 150.0,
    "share_scaling": 0.90,  # issue 23: share mode with N workers >= 0.9 x N its one-worker rate
}
CHARTED = ("s1", "s2", "s3", "s4")  # scenario 5 is a table of its own
# what the s1 runs taken as a scenario's baseline (in turn with its runs) are, by scenario
BASELINES = {
    "s3": "hook A alone beside the s3 runs",
    "s6": "nginx's answers, in turn with the s6 runs",
}
QUEUE_WORKERS = (1, 2, 3)
QUEUE_MODES = ("group", "share")
LATENCY_FIELDS = (
    "latency_rate",
    "latency_events",
    "p50_ms",
    "p99_ms",
    "common_rate",
    "common_p50_ms",
    "common_p99_ms",
)


def measured(
    runs: list[dict[str, Any]], scenario: str, name: str, beside: str | None = None
) -> list[dict[str, Any]]:
    """The runs of `name` in `scenario` that measured something, round by round; `beside`: the
    runs made as the baseline of that scenario's ratio (s1 runs beside s3's), else the others."""
    return [
        r
        for r in runs
        if r["scenario"] == scenario
        and r["contender"] == name
        and r.get("beside") == beside
        and "error" not in r
    ]


def find(
    runs: list[dict[str, Any]], scenario: str, name: str, beside: str | None = None
) -> dict[str, Any] | None:
    """The run of `name` in `scenario` that stands for all of its rounds: the median one by
    deliveries per second (of an even count, the lower of the two in the middle), with the
    latency of the round that measured it (the first)."""
    found = sorted(measured(runs, scenario, name, beside), key=lambda r: r["deliveries_per_second"])
    if not found:
        return None
    median = found[(len(found) - 1) // 2]
    paced = next((r for r in found if "latency_rate" in r), median)
    return {**median, **{k: v for k, v in paced.items() if k in LATENCY_FIELDS}}


def by_round(
    runs: list[dict[str, Any]],
    top: tuple[str, str, str | None],
    bottom: tuple[str, str, str | None],
    key: str,
) -> list[float]:
    """`key` of the run `top` (scenario, contender, beside) over that of `bottom`, for each
    round both measured: the two were run side by side."""
    below = {r["round"]: r[key] for r in measured(runs, *bottom) if r.get(key)}
    return [
        r[key] / below[r["round"]]
        for r in measured(runs, *top)
        if r.get(key) and r["round"] in below
    ]


def _field(run: dict[str, Any] | None, key: str) -> float | None:
    """`key` of a run `find` returned (never an empty dict), None when it found none."""
    if run is None:
        return None
    value: float | None = run[key]
    return value


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def ratios(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each comparison the issue asks for: value, target, and whether it is met."""
    runs = data["runs"]
    rate = {}
    for name in (
        "naive loop",
        "Quix Streams",
        "Apache Camel",
        "dispatcher --workers 1",
        "dispatcher --workers 2",
    ):
        found = find(runs, "s1", name)
        rate[name] = found["deliveries_per_second"] if found else None
    ceiling = data["ceiling"]["fast"]["deliveries_per_second"]
    rows: list[dict[str, Any]] = []

    def add(
        label: str,
        value: float | None,
        target: float | None,
        fmt: str,
        lower: bool = False,
        rounds: list[float] | None = None,
    ) -> None:
        """A row; `rounds`: the ratio of each round, `value` then being their median."""
        met = None
        if value is not None and target is not None:
            met = value <= target if lower else value >= target
        row: dict[str, Any] = {
            "ratio": label,
            "value": value,
            "target": target,
            "format": fmt,
            "met": met,
            "lower_is_better": lower,
        }
        if rounds and len(rounds) > 1:
            row["rounds"] = rounds
        rows.append(row)

    def median_of(
        top: tuple[str, str, str | None], bottom: tuple[str, str, str | None], key: str
    ) -> tuple[float | None, list[float]]:
        ratios = by_round(runs, top, bottom, key)
        return (statistics.median(ratios) if ratios else None), ratios

    for workers in (1, 2):
        name = f"dispatcher --workers {workers}"
        for other, target in (("naive loop", "vs_naive"), ("Quix Streams", "vs_quix")):
            if workers == 1:  # taken in turn with the naive loop and the Quix app: by round
                value, rounds = median_of(
                    ("s1", name, None), ("s1", other, None), "deliveries_per_second"
                )
            else:
                value, rounds = _ratio(rate[name], rate[other]), []
            add(f"s1 w{workers} / {other}", value, TARGETS[target], "x", rounds=rounds)
        add(
            f"s1 w{workers} / Apache Camel",
            _ratio(rate[name], rate["Apache Camel"]),
            None,
            "x",
        )
        add(f"s1 w{workers} / ceiling (wrk)", _ratio(rate[name], ceiling), None, "%")
    # the floor (bench/floor.py): what one Python process does with no guarantee kept, and
    # the share of it one worker reaches; taken in turn with the naive loop: by round
    value, rounds = median_of(
        ("s1", FLOOR.name, None), ("s1", "naive loop", None), "deliveries_per_second"
    )
    add("s1 Python floor / naive loop", value, None, "x", rounds=rounds)
    value, rounds = median_of(
        ("s1", "dispatcher --workers 1", None), ("s1", FLOOR.name, None), "cpu_us_per_delivery"
    )
    add("s1 w1: CPU per delivery, dispatcher / Python floor", value, None, "x", rounds=rounds)
    for workers in (1, 2):
        found = find(runs, "s1", f"dispatcher --workers {workers}")
        add(
            f"s1 w{workers} CPU per delivery (us)",
            _field(found, "cpu_us_per_delivery"),
            TARGETS["cpu_us"],
            "us",
            lower=True,
        )
    plain, traced = (find(runs, "s1", n) for n in (DISPATCHER_1.name, DISPATCHER_OTEL.name))
    add(
        "s1 w1: CPU per delivery, traced / untraced",
        _ratio(_field(traced, "cpu_us_per_delivery"), _field(plain, "cpu_us_per_delivery")),
        None,
        "x",
    )
    slow = find(runs, "s2", "dispatcher --workers 1")
    add(
        "s2 w1 / ideal 2,500/s",
        _ratio(_field(slow, "deliveries_per_second"), IDEAL_SLOW),
        TARGETS["slow"],
        "%",
    )
    for workers in (1, 2):
        name = f"dispatcher --workers {workers}"
        if measured(runs, "s1", name, beside="s3"):  # each s3 run right after an s1 run
            value, rounds = median_of(("s3", name, None), ("s1", name, "s3"), "results_per_second")
        else:
            alone, isolated = find(runs, "s1", name), find(runs, "s3", name)
            value = _ratio(
                _field(isolated, "results_per_second"), _field(alone, "results_per_second")
            )
            rounds = []
        add(
            f"s3 w{workers}: hook A / s1 (results written)",
            value,
            TARGETS["isolation"],
            "%",
            rounds=rounds,
        )
    # what `cpu_affinity: auto` saves: the same worker with its threads left to the scheduler
    value, rounds = median_of(
        ("s1", "dispatcher --workers 1, cpu_affinity off", None),
        ("s1", "dispatcher --workers 1", None),
        "cpu_us_per_delivery",
    )
    add("s1 w1: CPU per delivery, cpu_affinity off / auto", value, None, "x2", rounds=rounds)
    # issue 20: what the attempts topic costs, the same worker with and without it
    on = _field(find(runs, "s1", "dispatcher --workers 1"), "cpu_us_per_delivery")
    off = _field(find(runs, "s1", "dispatcher --workers 1, attempts off"), "cpu_us_per_delivery")
    cost = None if on is None or off is None else on - off
    add("s1 w1: CPU per delivery, attempts topic on - off (us)", cost, None, "us", lower=True)
    for workers in (1, 2):
        name = f"dispatcher --workers {workers}"
        plain, encrypted = find(runs, "s1", name), find(runs, "s4", name)
        add(
            f"s4 w{workers}: CPU per delivery, A256GCM / s1",
            _ratio(
                _field(encrypted, "cpu_us_per_delivery"),
                _field(plain, "cpu_us_per_delivery"),
            ),
            None,
            "x",
        )
    # scenario 6: a realistic answer against nginx's 28 bytes, the same worker in turn
    value, rounds = median_of(
        ("s6", "dispatcher --workers 1", None),
        ("s1", "dispatcher --workers 1", "s6"),
        "cpu_us_per_delivery",
    )
    add("s6 w1: CPU per delivery, realistic answers / s1", value, None, "x2", rounds=rounds)
    for mode in QUEUE_MODES:
        one = queue_rate(runs, mode, 1)
        for workers in QUEUE_WORKERS[1:]:
            add(
                f"s5 {mode} w{workers} / {mode} w1",
                _ratio(queue_rate(runs, mode, workers), one),
                TARGETS["share_scaling"] * workers if mode == "share" else None,
                "x",
            )
    rss = data.get("rss")
    add(
        "RSS with 5,000 in flight (MB)",
        rss and rss.get("rss_mb"),
        TARGETS["rss_mb"],
        "MB",
        lower=True,
    )
    return rows


def _queue_runs(runs: list[dict[str, Any]], mode: str, workers: int) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["scenario"] == "s5" and r.get("consume") == mode and r.get("workers") == workers
    ]


def queue_run(runs: list[dict[str, Any]], mode: str, workers: int) -> dict[str, Any] | None:
    """Scenario 5's run of `mode` (group or share) with `workers` workers."""
    return next((r for r in _queue_runs(runs, mode, workers) if "error" not in r), None)


def queue_rate(runs: list[dict[str, Any]], mode: str, workers: int) -> float | None:
    found = queue_run(runs, mode, workers)
    return found["deliveries_per_second"] if found else None


def queue_table(data: dict[str, Any]) -> list[str]:
    """Scenario 5: mode x workers -> deliveries/s, and the ratio to the mode's one worker."""
    runs = data["runs"]
    if not any(r["scenario"] == "s5" for r in runs):
        return []
    lines = [
        "",
        "Scenario 5, queue modes: 200 ms endpoint, 1 input partition, hook concurrency 100 per "
        "worker (ideal: 500/s per busy worker).",
        "",
        "| consume | workers | events | deliveries/s | / one worker | of ideal | CPU µs/delivery "
        "| spread over the workers | load average before / after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for mode in QUEUE_MODES:
        one = queue_rate(runs, mode, 1)
        for workers in QUEUE_WORKERS:
            run = queue_run(runs, mode, workers)
            if run is None:
                failed = _queue_runs(runs, mode, workers)
                why = f"failed: {failed[0]['error'][:60]}" if failed else "not run"
                lines.append(f"| {mode} | {workers} | - | {why} | | | | | |")
                continue
            ideal = 500.0 * (workers if mode == "share" else 1)
            if mode == "share":
                spread = "records " + "+".join(map(str, run.get("records_per_member") or []))
            else:
                spread = "partitions " + "+".join(map(str, run.get("partitions_per_member") or []))
            lines.append(
                f"| {mode} | {workers} | {run['events']:,} | "
                f"{_cell(run['deliveries_per_second'])} | "
                f"{_show(_ratio(run['deliveries_per_second'], one), 'x2')} | "
                f"{_show(_ratio(run['deliveries_per_second'], ideal), '%')} | "
                f"{_cell(run['cpu_us_per_delivery'])} | {spread} | "
                f"{run['load_average_before']:.1f} / {run.get('load_average_after', 0):.1f} |"
            )
    return lines


def _show(value: float | None, fmt: str, exact: bool = False) -> str:
    """`value` as the tables show it; `exact`: with two more digits (a figure short of its
    target by less than the rounding)."""
    if value is None:
        return "n/a"
    if fmt in ("x", "x2"):
        return f"{value:.{(1 if fmt == 'x' else 2) + 2 * exact}f}x"
    if fmt == "%":
        return f"{100 * value:.{2 * exact}f}%"
    if exact:
        return f"{value:,.2f} {fmt}"
    return f"{value:,.0f} {fmt}" if value >= 100 else f"{value:.1f} {fmt}"


def _cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _warmup(warmup: dict[str, Any] | None) -> str:
    """The header's sentence on the broker's warm-up (absent from results that predate it)."""
    if warmup is None:
        return ""
    if not warmup["quiet"]:
        return (
            f" The broker was warmed with {warmup['events']:,} events for {warmup['seconds']:.0f} s"
            " and its JIT compiler was still busy after."
        )
    return (
        f" The broker was warmed first, as a production broker is: {warmup['events']:,} events in"
        f" {warmup['seconds']:.0f} s, until its JIT compiler used under {QUIET:.0%} of a core."
    )


def markdown(data: dict[str, Any]) -> str:
    """The results table and the ratios, as printed at the end and kept beside the JSON."""
    loads = [r["load_average_before"] for r in data["runs"] if "load_average_before" in r]
    lines = [
        f"Benchmark {data['date']} on {data['machine']['cpus']} cores ({data['machine']['cpu']}), "
        f"`{data['command']}`, {data['seconds']:.0f} s; 1-minute load average before each run "
        f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f} (other work on the machine "
        "skews every number alike)." + _warmup(data.get("broker_warmup")),
        "",
        "| scenario | contender | deliveries/s | CPU µs/delivery | p50 ms | p99 ms | peak RSS MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, fast in (("s1", "fast"), ("s2", "slow")):
        ceiling = data["ceiling"][fast]
        lines.append(
            f"| {key} | ceiling: wrk, {ceiling['connections']} connections | "
            f"{_cell(ceiling['deliveries_per_second'])} | - | {_cell(ceiling['p50_ms'], 1)} | "
            f"{_cell(ceiling['p99_ms'], 1)} | - |"
        )
        lines.extend(_rows(data, key))
    for key in ("s3", "s4", "s5", "s6"):
        lines.extend(_rows(data, key))
    rss = data.get("rss")
    if rss:
        lines.append(
            f"| rss | {rss['contender']}, {rss.get('in_flight', '?')} in flight | - | - | - | - | "
            f"{_cell(rss.get('rss_mb'), 1)} ({_cell(rss.get('idle_rss_mb'), 1)} idle) |"
        )
    lines += ["", "| ratio | value | target | met |", "| --- | ---: | ---: | :---: |"]
    for row in data["ratios"]:
        target = (
            "-"
            if row["target"] is None
            else (
                ("<= " if row["lower_is_better"] else ">= ") + _show(row["target"], row["format"])
            )
        )
        met = {True: "yes", False: "no", None: "-"}[row["met"]]
        value = _show(row["value"], row["format"])
        if row["met"] is False and target.endswith(" " + value):  # rounded up to the target
            value = _show(row["value"], row["format"], exact=True)
        if row.get("rounds"):
            shown = ", ".join(_show(r, row["format"]) for r in row["rounds"])
            value += f" (median of {len(row['rounds'])} rounds: {shown})"
        lines.append(f"| {row['ratio']} | {value} | {target} | {met} |")
    lines += common_latency_table(data)
    lines += cpu_split_table(data)
    lines += queue_table(data)
    lines += ["", _legend()]
    return "\n".join(lines) + "\n"


def common_latency_table(data: dict[str, Any]) -> list[str]:
    """Scenario 1's latency with every contender paced at the same rate."""
    runs = [r for r in data["runs"] if r["scenario"] == "s1" and r.get("common_rate")]
    if not runs:
        return []
    lines = [
        "",
        f"Scenario 1 at the same load for all: {runs[0]['common_rate']:,.0f} events/s, event "
        "produced -> `completed_at`.",
        "",
        "| contender | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run['contender']} | {_cell(run.get('common_p50_ms'), 1)} | "
            f"{_cell(run.get('common_p99_ms'), 1)} |"
        )
    return lines


def cpu_split_table(data: dict[str, Any]) -> list[str]:
    """Scenario 1's CPU by process: the contender, the broker, nginx, and how busy the machine
    was, for each contender's median run: what a contender could still gain on this machine."""
    names = dict.fromkeys(r["contender"] for r in data["runs"] if r["scenario"] == "s1")
    runs = [run for name in names if (run := find(data["runs"], "s1", name)) is not None]
    runs = [run for run in runs if run.get("machine_busy_percent") is not None]
    if not runs:
        return []
    lines = [
        "",
        "Scenario 1, where the CPU went while each contender's median run was measured (µs of "
        f"CPU per delivery; cores: µs x deliveries/s; the machine has {data['machine']['cpus']}).",
        "",
        "| contender | deliveries/s | contender µs (cores) | broker µs (cores) | nginx µs | "
        "machine busy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        rate = run["deliveries_per_second"]

        def share(us: float | None, rate: float = rate) -> str:
            return "-" if us is None else f"{us:,.0f} ({us * rate / 1e6:.2f})"

        lines.append(
            f"| {run['contender']} | {_cell(rate)} | {share(run.get('cpu_us_per_delivery'))} | "
            f"{share(run.get('broker_cpu_us_per_delivery'))} | "
            f"{_cell(run.get('receiver_cpu_us_per_delivery'))} | "
            f"{run['machine_busy_percent']:.0f}% |"
        )
    return lines


def _rows(data: dict[str, Any], key: str) -> list[str]:
    """A row per contender of scenario `key` (its median run, with every round's rate), then
    a row for the runs of another scenario `key` was the baseline of."""
    rows = []
    groups = dict.fromkeys(
        (r["contender"], r.get("beside")) for r in data["runs"] if r["scenario"] == key
    )
    for name, beside in sorted(groups, key=lambda group: group[1] is not None):
        run = find(data["runs"], key, name, beside)
        label = name if beside is None else f"{name}, {BASELINES[beside]}"
        if run is None:
            failed = [
                r["error"]
                for r in data["runs"]
                if (r["scenario"], r["contender"], r.get("beside")) == (key, name, beside)
                and "error" in r
            ]
            rows.append(f"| {key} | {label} | failed: {failed[0][:60]} | | | | |")
            continue
        rates = [r["deliveries_per_second"] for r in measured(data["runs"], key, name, beside)]
        rounds = (
            f"; median of {len(rates)} runs: {' / '.join(_cell(r) for r in rates)}"
            if len(rates) > 1
            else ""
        )
        split = run.get("partitions_per_member") or []
        shares = f"; input partitions {'+'.join(map(str, split))}" if len(split) > 1 else ""
        rows.append(
            f"| {key} | {label} ({run['events']:,} events{shares}{rounds}) | "
            f"{_cell(run['deliveries_per_second'])} | {_cell(run['cpu_us_per_delivery'])} | "
            f"{_cell(run.get('p50_ms'), 1)} | {_cell(run.get('p99_ms'), 1)} | "
            f"{_cell(run['peak_rss_mb'], 1)} |"
        )
    return rows


def _legend() -> str:
    return (
        "s1: fast endpoint, 12 partitions, JSON field mapping + HMAC. s2: 200 ms endpoint, "
        "1 partition, concurrency 500. s3: s1 plus a hook B that never answers (1 s timeout), "
        "hook A counted. s4: s1 with A256GCM encryption. s5: 200 ms endpoint, 1 partition, "
        "concurrency 100 per worker, 1-3 workers as a consumer group and as a share group. "
        "s6: s1 with a payment provider's answers (1 KiB of JSON with a link, 19 headers), "
        "checked and captured by the hook. "
        "Deliveries/s: a backlog produced while the contender is stopped (SIGSTOP), from its "
        "SIGCONT until every result is written and every offset committed (share mode: every "
        "record accepted), after warm-up. Every dispatcher runs with `cpu_affinity: auto` "
        "(each worker's Python threads on one CPU) but the one marked `cpu_affinity off`. "
        "Latency: event produced -> `completed_at`, at half the contender's own rate."
    )


def _common_rate(runs: list[dict[str, Any] | None]) -> float:
    rate: float = next(r["common_rate"] for r in runs if r and r.get("common_rate"))
    return rate


def chart(data: dict[str, Any], path: Path) -> None:
    """Four panels: s1 throughput, CPU per delivery, s1 latency, the dispatcher's scenarios."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = data["runs"]
    names = ["naive loop", "Quix Streams", "dispatcher --workers 1", "dispatcher --workers 2"]
    short = ["naive", "Quix", "disp. w1", "disp. w2"]
    s1 = [find(runs, "s1", n) for n in names]
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    figure.suptitle(f"DUGAA dispatcher benchmark, {data['date']} ({data['machine']['cpus']} cores)")

    ax = axes[0][0]
    labels = ["ceiling (wrk)", *short]
    values = [data["ceiling"]["fast"]["deliveries_per_second"]] + [
        r["deliveries_per_second"] if r else 0 for r in s1
    ]
    bars = ax.bar(labels, values, color=["#999999", "#d62728", "#ff7f0e", "#1f77b4", "#17becf"])
    ax.set_yscale("log")
    ax.set_title("s1: deliveries per second (log scale)")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)

    ax = axes[0][1]
    s4 = [find(runs, "s4", n) for n in names]
    x = range(len(names))
    plain = [(r and r["cpu_us_per_delivery"]) or 0 for r in s1]
    encrypted = [(r and r["cpu_us_per_delivery"]) or 0 for r in s4]
    bars = ax.bar([i - 0.2 for i in x], plain, 0.4, label="s1", color="#1f77b4")
    ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in plain], fontsize=8)
    bars = ax.bar([i + 0.2 for i in x], encrypted, 0.4, label="s4 (A256GCM)", color="#9467bd")
    ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in encrypted], fontsize=8)
    ax.axhline(
        TARGETS["cpu_us"], color="green", linestyle="--", label=f"target {TARGETS['cpu_us']:.0f} µs"
    )
    ax.set_xticks(list(x), short)
    ax.set_yscale("log")
    ax.set_title("CPU µs per delivery (all processes; log scale)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    common = any(r and r.get("common_rate") for r in s1)  # all at one load, when measured
    p50 = [(r and r.get("common_p50_ms" if common else "p50_ms")) or 0 for r in s1]
    p99 = [(r and r.get("common_p99_ms" if common else "p99_ms")) or 0 for r in s1]
    bars = ax.bar([i - 0.2 for i in x], p50, 0.4, label="p50", color="#2ca02c")
    ax.bar_label(bars, labels=[f"{v:,.1f}" for v in p50], fontsize=8)
    bars = ax.bar([i + 0.2 for i in x], p99, 0.4, label="p99", color="#8c564b")
    ax.bar_label(bars, labels=[f"{v:,.1f}" for v in p99], fontsize=8)
    ax.set_xticks(list(x), short)
    ax.set_yscale("log")
    ax.set_title(
        "s1: event-to-delivery ms, "
        + (
            f"all at {_common_rate(s1):,.0f} events/s (log)"
            if common
            else "at half each one's rate (log)"
        )
    )
    ax.legend(fontsize=8)

    ax = axes[1][1]
    wanted = [
        r for r in data["ratios"] if r["ratio"].startswith(("s2", "s3")) and r["value"] is not None
    ]
    bars = ax.bar(
        [r["ratio"].split(":")[0].replace(" / ideal 2,500/s", " vs ideal") for r in wanted],
        [100 * r["value"] for r in wanted],
        color="#1f77b4",
    )
    ax.bar_label(bars, labels=[f"{100 * r['value']:.0f}%" for r in wanted], fontsize=8)
    ax.axhline(90, color="green", linestyle="--", label="target 90%")
    rss = data.get("rss") or {}
    ax.set_title(
        "s2: % of ideal; s3: hook A % of s1"
        + (
            f"\nRSS with {rss.get('in_flight', '?')} in flight: {rss.get('rss_mb', '?')} MB"
            if rss
            else ""
        )
    )
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(data: dict[str, Any], stem: Path) -> tuple[str, str]:
    """Add the ratios to `data`; write `stem`.json, .md and (with a charted scenario) .png.
    Returns the table and the suffixes written."""
    data["ratios"] = ratios(data)
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    table = markdown(data)
    stem.with_suffix(".md").write_text(table)
    written = ".json, .md"
    if any(r["scenario"] in CHARTED for r in data["runs"]):  # else an empty chart
        chart(data, stem.with_suffix(".png"))
        written += ", .png"
    return table, written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("results", type=Path, help="a results file (.json) of `python -m bench`")
    path = parser.parse_args().results
    table, _ = write(json.loads(path.read_text()), path.with_suffix(""))
    print(table)


if __name__ == "__main__":
    main()
