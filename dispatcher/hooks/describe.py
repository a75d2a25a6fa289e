"""What `dispatcher hooks validate | list | show` print: pure functions the CLI calls.

Secrets never reach the output: `Secret` values, header values and URL query values whose
names suggest a credential are shown as `***`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from dispatcher.config.durations import format_duration
from dispatcher.config.secrets import MASK, Secret
from dispatcher.hooks.loader import load_hooks_text, validate_hooks_text
from dispatcher.model.hook import Expectation, FieldSpec, Hook

_SENSITIVE = re.compile(r"auth|token|key|secret|pass|cookie|signature|session", re.IGNORECASE)
COLUMNS = ("ID", "ENABLED", "EVENTS", "METHOD", "FORMAT", "FIELDS", "URL")


def validate_command(path: str | Path) -> tuple[int, str]:
    """`hooks validate FILE`: exit code 0 or 1, and the text to print (every problem, one a line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return 1, f"{path}: cannot read hooks file: {exc}"
    problems = validate_hooks_text(text, str(path), warnings=True)
    lines = [str(problem) for problem in problems]
    errors = sum(not problem.warning for problem in problems)
    if errors:
        lines.append(f"{path}: {errors} problem{'s' if errors != 1 else ''}")
        return 1, "\n".join(lines)
    count = len(load_hooks_text(text, str(path)))
    lines.append(f"{path}: {count} hook{'s' if count != 1 else ''} valid")
    return 0, "\n".join(lines)


def list_hooks(hooks: Iterable[Hook]) -> str:
    """`hooks list`: one row per hook, columns aligned."""
    rows = [COLUMNS] + [
        (
            hook.id,
            "yes" if hook.enabled else "no",
            ",".join(hook.events),
            hook.method,
            hook.format,
            str(len(hook.fields)) if hook.fields else "data",
            mask_url(hook.url),
        )
        for hook in hooks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def show_hook(hook: Hook) -> str:
    """`hooks show ID`: the hook as YAML, in the shape of a hooks file, secrets masked."""
    out = io.StringIO()
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.dump(describe(hook), out)
    return out.getvalue()


def describe(hook: Hook) -> CommentedMap:
    """The hook as a hooks-file definition, secrets masked."""
    doc = CommentedMap(id=hook.id)
    if hook.description:
        doc["description"] = hook.description
    doc["events"] = _flow(list(hook.events))
    doc["url"] = mask_url(hook.url)
    doc["method"] = hook.method
    if hook.headers:
        doc["headers"] = {name: _header(name, value) for name, value in hook.headers}
    if hook.auth.type != "none":
        doc["auth"] = {"type": hook.auth.type, **{k: _mask(v) for k, v in hook.auth.settings}}
    doc["format"] = hook.format
    if hook.format == "csv":
        doc["csv"] = _flow({"delimiter": hook.csv_delimiter, "header": hook.csv_header})
    if hook.format == "xml":
        xml = {"root": hook.xml_root, "item": hook.xml_item, "namespace": hook.xml_namespace}
        doc["xml"] = _flow({k: v for k, v in xml.items() if v is not None})
    if hook.fields:
        doc["fields"] = [_flow(_field(spec)) for spec in hook.fields]
    if response := _response(hook):
        doc["response"] = response
    if hook.encryption is not None:
        keys = [{"id": k.id, "key": MASK, "state": k.state} for k in hook.encryption.keys]
        doc["encryption"] = {"algorithm": hook.encryption.algorithm, "keys": keys}
    doc["timeout"] = format_duration(hook.timeout)
    retry = {
        "max_attempts": hook.retry.max_attempts,
        "max_age": format_duration(hook.retry.max_age),
    }
    doc["retry"] = _flow(retry)
    doc["concurrency"] = hook.concurrency
    if hook.rate_limit is not None:
        rate = hook.rate_limit
        doc["rate_limit"] = f"{rate:g}/s" if rate >= 1 else f"{rate * 60:g}/m"
    doc["ordering"] = hook.ordering
    doc["enabled"] = hook.enabled
    if hook.allow_private_networks is not None:
        doc["allow_private_networks"] = hook.allow_private_networks
    doc["max_payload_bytes"] = hook.max_payload_bytes
    if not hook.tls.verify or hook.tls.ca:
        doc["tls"] = _flow({"verify": hook.tls.verify, "ca": hook.tls.ca})
    return doc


def mask_url(url: str) -> str:
    """`url` with a password and credential-like query values replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SENSITIVE.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _field(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name}
    if spec.source is not None:
        out["from"] = spec.source
    elif spec.template is not None:
        out["template"] = spec.template
    else:
        out["value"] = spec.value
    extra = {"type": spec.type, "format": spec.format, "default": spec.default}
    out.update({k: v for k, v in extra.items() if v is not None})
    if spec.required:
        out["required"] = True
    return out


def _response(hook: Hook) -> dict[str, Any]:
    spec = hook.response
    out: dict[str, Any] = {}
    if spec.success_status:
        out["success_status"] = _flow(list(spec.success_status))
    if spec.expect or spec.capture:
        out["format"] = spec.format
    if spec.expect:
        out["expect"] = [
            _flow({k: v for k, v in _expectation(e).items() if v is not None}) for e in spec.expect
        ]
    if spec.capture:
        out["capture"] = dict(spec.capture)
    return out


def _expectation(e: Expectation) -> dict[str, Any]:
    one_of = list(e.one_of) if e.one_of is not None else None
    return {
        "path": e.path,
        "equals": e.equals,
        "exists": e.exists,
        "matches": e.matches,
        "in": one_of,
    }


def _header(name: str, value: str) -> str:
    return MASK if _SENSITIVE.search(name) else value


def _mask(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _flow(value: Any) -> Any:
    """`value` written on one line (`{a: 1}`, `[x, y]`)."""
    node: Any = CommentedMap(value) if isinstance(value, dict) else CommentedSeq(value)
    node.fa.set_flow_style()
    return node
