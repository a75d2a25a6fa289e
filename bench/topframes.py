"""The top frames of a py-spy raw profile (`python -m bench --profile` writes them in bench/work/).

`python -m bench.topframes FILE [--top N]` prints the share of samples per thread, then the
frames with the most samples of their own (self) and the most samples beneath them (total).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# frames every sample of a thread passes through: not worth a line in "total"
PLUMBING = (
    "runpy",
    "runners.py",
    "base_events.py",
    "asyncio/events.py",
    "threading.py",
    "dispatcher/cli/",
    "dispatcher/__main__.py",
    "Worker.run ",
    "Worker._consume ",
)


def read(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.topframes", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    stacks = read(args.profile)
    total = sum(count for _, count in stacks) or 1
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    beneath: Counter[str] = Counter()
    for frames, count in stacks:
        threads[frames[0].split(" (")[0]] += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            if not any(mark in frame for mark in PLUMBING):
                beneath[frame] += count
    print(f"{total} samples")
    for title, counter in (("thread", threads), ("self", own), ("total", beneath)):
        print(f"\n{title}:")
        for frame, count in counter.most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {frame[:130]}")


if __name__ == "__main__":
    main()
