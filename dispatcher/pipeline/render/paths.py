"""Dotted paths into a document (`data.items[0].sku`, `data["first name"]`): parse and look up.

Shared by field mapping (paths into the event) and response checks (paths into a response).
A path is data, never code: it can only walk mappings and lists.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

Step = str | int
Path = tuple[Step, ...]


class _Missing:
    """The result of a lookup that found nothing (distinct from a present `null`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
ROOT_PATHS = frozenset({"", "."})

_TOKEN = re.compile(
    r"""
    (?P<name>[^.\[\]"\s{}]+)                 # a plain key
    | \[\s*(?P<index>-?\d+)\s*\]             # a list index
    | \[\s*"(?P<quoted>(?:[^"\\]|\\.)*)"\s*\]  # a quoted key, for names with dots or spaces
    | (?P<dot>\.)
    """,
    re.VERBOSE,
)


@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """The steps of `text`; raise ValueError saying where it is malformed. Cached: a hook's paths
    are read again on every delivery (conditions, captures)."""
    if text.strip() in ROOT_PATHS:
        return ()
    steps: list[Step] = []
    position = 0
    expect_step = True
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unexpected {text[position]!r} at position {position + 1}")
        if match.group("dot") is not None:
            if expect_step:
                raise ValueError(f"empty name at position {position + 1}")
            expect_step = True
        elif match.group("name") is not None:
            if not expect_step:
                raise ValueError(f"missing '.' before position {position + 1}")
            steps.append(match.group("name"))
            expect_step = False
        else:
            if expect_step and steps:
                raise ValueError(f"unexpected '[' after '.' at position {position + 1}")
            if match.group("index") is not None:
                if not steps:
                    raise ValueError("a path cannot start with an index")
                steps.append(int(match.group("index")))
            else:
                steps.append(re.sub(r"\\(.)", r"\1", match.group("quoted")))
            expect_step = False
        position = match.end()
    if expect_step:
        raise ValueError("a path cannot end with '.'")
    return tuple(steps)


def lookup(document: Any, path: Path, *, scalar_is_list: bool = False) -> Any:
    """The value at `path` in `document`, or `MISSING`.

    With `scalar_is_list`, index 0 (or -1) of a non-list is the value itself: in XML a
    single `<item>` and a repeated one are the same shape to the person writing the path.
    """
    node = document
    for step in path:
        if isinstance(step, int):
            if isinstance(node, list):
                if -len(node) <= step < len(node):
                    node = node[step]
                    continue
                return MISSING
            if scalar_is_list and step in (0, -1) and node is not MISSING:
                continue
            return MISSING
        if isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return MISSING
    return node


def format_path(path: Path) -> str:
    """The written form of `path` (the inverse of `parse_path` for plain names)."""
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif re.fullmatch(r"[^.\[\]\"\s{}]+", step):
            out.append(f".{step}" if out else step)
        else:
            escaped = step.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)
