"""Load and validate hooks files, reporting every problem at once as `FILE:LINE: path: message`.

The YAML is read with ruamel's round-trip loader, which keeps the line of every key and list
item (and here the text of every number, `dispatcher.hooks.numbers`); the JSON Schema (`dispatcher.hooks.schema`) and the checks it cannot express
(`dispatcher.hooks.checks`) find the problems; only a clean definition becomes a `Hook`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from dispatcher.config.secrets import SecretScope
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, DispatcherError
from dispatcher.hooks.checks import hook_problems, hook_warnings
from dispatcher.hooks.credentials import KeyCheck
from dispatcher.hooks.numbers import WrittenConstructor, rewritten_numbers
from dispatcher.hooks.schema import file_findings, hook_findings
from dispatcher.hooks.shape import shape_problem
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex
from dispatcher.pipeline.render.paths import format_path

Steps = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or, with `warning`, doubtful) in a hooks file or definition."""

    file: str
    line: int | None
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        text = f"warning: {self.message}" if self.warning else self.message
        return f"{place}: {self.path}: {text}" if self.path else f"{place}: {text}"


def configured_hooks(settings: Settings) -> HookIndex:
    """The hooks in force at start: the hooks file (the store adds its own when configured)."""
    if not settings.hooks_file:
        return HookIndex()
    return HookIndex(load_hooks_file(settings.hooks_file))


def load_hooks_file(path: str | Path) -> list[Hook]:
    """Every hook in the file at `path`; raise `ConfigError` listing all problems, one a line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read hooks file: {exc}") from None
    return load_hooks_text(text, str(path))


def load_hooks_text(text: str, filename: str) -> list[Hook]:
    """Every hook in the YAML `text`; raise `ConfigError` listing all problems, one a line."""
    document, problems = _examine(text, filename, warnings=False)
    hooks: list[Hook] = []
    if not problems:
        for i, raw in enumerate(document["hooks"]):
            try:
                hooks.append(Hook.from_dict(raw, where=f"hooks[{i}]"))
            except (DispatcherError, ValueError, KeyError, TypeError) as exc:
                problems.append(Problem(filename, None, f"hooks[{i}]", str(exc)))
    _raise_if_any(problems)
    return hooks


def validate_hooks_text(
    text: str, filename: str, *, warnings: bool = False, consume: str = "group"
) -> list[Problem]:
    """Every problem in the YAML `text` in file order (and doubts, with `warnings`), for
    workers consuming as `consume` says (`mode_problems`)."""
    return _examine(text, filename, warnings=warnings, consume=consume)[1]


UNORDERED = (
    "consume: share gives no order, and this hook has ordering: key (set ordering: none, or run"
    " the workers with consume: group)"
)


def ordering_refused(raw: Any, consume: str) -> bool:
    """Whether workers consuming as `consume` says could not run definition `raw` as written:
    in queue mode (a share group) a hook ordered by key."""
    return consume == "share" and isinstance(raw, dict) and raw.get("ordering") == "key"


def mode_problems(raw: Any, where: str, consume: str) -> list[Problem]:
    """`ordering_refused` as a problem of definition `raw` (named `where`)."""
    return [Problem(where, None, "ordering", UNORDERED)] if ordering_refused(raw, consume) else []


def definition_problems(
    raw: Any, where: str, *, warnings: bool = False, scope: SecretScope | None = None
) -> list[Problem]:
    """Every problem in one hook definition (as it arrives as JSON from the hook topic); with a
    `scope`, its secret references must stay inside it."""
    findings = [(path, message, False) for path, message in hook_findings(raw)]
    checked = hook_problems(raw, key_check=_key(), scope=scope)
    findings += [(path, message, False) for path, message in checked]
    if warnings:
        findings += [(path, message, True) for path, message in hook_warnings(raw)]
    return [Problem(where, None, format_path(p), m, w) for p, m, w in _unique(findings)]


def hook_from_definition(raw: dict[str, Any], where: str) -> Hook:
    """The hook `raw` defines; raise `ConfigError` listing all its problems."""
    problems = definition_problems(raw, where)
    _raise_if_any(problems)
    try:
        return Hook.from_dict(raw, where=where)
    except (DispatcherError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _examine(
    text: str, filename: str, *, warnings: bool, consume: str = "group"
) -> tuple[Any, list[Problem]]:
    """The plain document and its problems, sorted by line."""
    try:
        tree = read_yaml(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(filename, line, "", f"invalid YAML: {exc.problem or exc.context}")]
    except YAMLError as exc:
        return None, [Problem(filename, None, "", f"invalid YAML: {exc}")]
    except RecursionError:
        return None, [Problem(filename, None, "", "cannot be read: it nests too deeply")]
    too_large = shape_problem(tree, len(text))
    if too_large is not None:
        return None, [Problem(filename, None, "", f"cannot be checked: {too_large}")]
    document = plain(tree)
    findings = [(path, message, False) for path, message in file_findings(document)]
    hooks = document.get("hooks") if isinstance(document, dict) else None
    first_seen: dict[str, int] = {}
    for i, raw in enumerate(hooks if isinstance(hooks, list) else ()):
        where: Steps = ("hooks", i)
        findings += [((*where, *p), m, False) for p, m in hook_problems(raw, key_check=_key())]
        findings += [((*where, *p), m, False) for p, m in rewritten_numbers(tree["hooks"][i])]
        if ordering_refused(raw, consume):
            findings.append(((*where, "ordering"), UNORDERED, False))
        if warnings:
            findings += [((*where, *p), m, True) for p, m in hook_warnings(raw)]
        hook_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(hook_id, str) and hook_id in first_seen:
            line = line_of(tree, ("hooks", first_seen[hook_id], "id"))
            findings.append(
                ((*where, "id"), f"duplicate id {hook_id!r} (first at line {line})", False)
            )
        elif isinstance(hook_id, str):
            first_seen[hook_id] = i
    problems = [
        Problem(filename, line_of(tree, path), format_path(path), message, warning)
        for path, message, warning in _unique(findings)
    ]
    problems.sort(key=lambda p: p.line or 0)
    return document, problems


def read_yaml(text: str) -> Any:
    """The round-trip tree of the YAML `text`: every key and item knows its line, and every
    number the text it was written as (`dispatcher.hooks.numbers`)."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = WrittenConstructor
    return yaml.load(text)


def line_of(tree: Any, path: Iterable[str | int]) -> int:
    """The 1-based line of the key or item at `path`, or of the nearest part of it that exists."""
    line, node = 1, tree
    for step in path:
        lc: Any = getattr(node, "lc", None)
        try:
            if isinstance(step, int) and isinstance(node, list):
                line, node = lc.item(step)[0] + 1, node[step]
            elif isinstance(node, dict) and step in node:
                line, node = lc.key(step)[0] + 1, node[step]
            else:
                break
        except (AttributeError, KeyError, IndexError, TypeError):
            break  # a merged or aliased node without its own position: keep the parent's line
    return line


def plain(tree: Any) -> Any:
    """`tree` as plain dicts, lists and scalars (YAML dates become ISO 8601 text)."""
    if isinstance(tree, dict):
        return {str(key): plain(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [plain(value) for value in tree]
    if isinstance(tree, datetime | date):
        return tree.isoformat()
    if isinstance(tree, bool) or tree is None:
        return tree
    for kind in (str, int, float):
        if isinstance(tree, kind):
            return kind(tree)
    return str(tree)


def _unique(findings: list[tuple[Steps, str, bool]]) -> list[tuple[Steps, str, bool]]:
    return list(dict.fromkeys(findings))


def _raise_if_any(problems: list[Problem]) -> None:
    errors = [p for p in problems if not p.warning]
    if errors:
        raise ConfigError("\n".join(str(p) for p in errors))


def _key() -> KeyCheck | None:
    """The encryption module's key check, when that module is installed."""
    try:
        from dispatcher.security.encryption import check_key
    except ImportError:
        return None
    return check_key
