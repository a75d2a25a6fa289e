"""Dotted paths into a document (`data.items[0].sku`, `data["first name"]`): parse and look up.

Shared by field mapping (paths into the event) and response checks (paths into a response).
A path is data, never code: it can only walk mappings and lists.
"""

from __future__ import annotations

import json
import re
import unicodedata
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
            if match.group("index") is not None:  # first: an answer that is a list
                steps.append(int(match.group("index")))
            else:
                steps.append(_unescaped(match.group("quoted")))
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
    """The written form of `path`, which `parse_path` reads back: on one line, a key's control
    and format characters written as JSON escapes them (`\\n`, `\\u001b`, `\\u202e`), so a
    problem naming a hostile key stays one line of a terminal or a log, and reads as stored."""
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _PLAIN.fullmatch(step) and not any(map(_unseen, step)):
            out.append(f".{step}" if out else step)
        else:
            quoted = json.dumps(step, ensure_ascii=False)
            out.append("[" + "".join(_u_escaped(ch) if _unseen(ch) else ch for ch in quoted) + "]")
    return "".join(out)


_PLAIN = re.compile(r'[^.\[\]"\s{}]+')  # a key `parse_path` reads as it is written
# a backslash escape in a quoted key: JSON's (`\\n`, `\\u0007`), else the character itself
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_NAMED = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
# characters a terminal acts on or never shows, or where a reader ends a line (`splitlines`):
# controls, format characters (bidirectional overrides), surrogates, line/paragraph separators
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _unseen(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSEEN


def _u_escaped(ch: str) -> str:
    """`ch` as JSON escapes it: past U+FFFF, as its UTF-16 surrogate pair."""
    units = ch.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def _unescaped(text: str) -> str:
    """A quoted key's text with its escapes read (a surrogate pair as the character it is)."""
    text = _ESCAPE.sub(_one_unescaped, text)
    return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")


def _one_unescaped(match: re.Match[str]) -> str:
    escape = match.group(1)
    if len(escape) == 5:
        return chr(int(escape[1:], 16))
    return _NAMED.get(escape, escape)
