"""How deep and how large a hook definition may be before any check walks it.

The checks of a definition (its schema, its secret references, masking, `loader.plain`) walk
it recursively, a few Python frames a level: a body or a YAML text nested a few hundred levels
deep ran the admin service out of stack (a 500), or was stored and then broke every answer
showing the hook. And a YAML alias repeats its node wherever it stands: a few hundred bytes of
aliases of aliases expand to millions of values, each built and checked in turn. So a
definition nests at most `MAX_DEPTH` levels (as deep as an event may), and a YAML text holds,
its aliases expanded, at most `GROWTH` values per character written (anchors that spare
repeating a block stay far below that).
"""

from __future__ import annotations

from typing import Any

from dispatcher.pipeline.decode import MAX_DEPTH

GROWTH = 10
SPARE = 1_000  # values any text may hold, however short


def shape_problem(tree: Any, text_chars: int | None = None) -> str | None:
    """Why `tree` is too deep to check, or, read from `text_chars` characters of YAML, too
    large once its aliases are expanded; None when it is neither. Walks no further than it
    must to tell."""
    budget = None if text_chars is None else GROWTH * text_chars + SPARE
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if budget is not None:
            budget -= 1
            if budget < 0:
                return f"its aliases expand to more than {GROWTH} values per character written"
        if isinstance(node, dict):
            children = [*node.keys(), *node.values()]  # a key may be an alias of a collection
        elif isinstance(node, list):
            children = node
        else:
            continue
        if children and depth >= MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        stack.extend((child, depth + 1) for child in children)
    return None
