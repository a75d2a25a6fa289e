"""A hook as a hooks-file definition with its secrets masked: what `hooks show` and the admin
API show of a hook."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from dispatcher.config.durations import format_duration
from dispatcher.config.secrets import MASK
from dispatcher.hooks.masking import mask_value, shown_header, shown_url
from dispatcher.model.hook import CircuitSpec, FieldSpec, Hook


def describe(hook: Hook) -> CommentedMap:
    """The hook as a hooks-file definition, secrets masked; of the stand-in of a stored
    definition that did not load, only what it holds (the events it dead-letters), not
    defaults that the definition may not have."""
    doc = CommentedMap(id=hook.id)
    if hook.description:
        doc["description"] = hook.description
    doc["events"] = _flow(list(hook.events))
    if hook.tenant is not None:
        doc["tenant"] = hook.tenant
    if hook.filter:
        doc["filter"] = [_flow(condition.to_dict()) for condition in hook.filter]
    if hook.stand_in:
        doc["enabled"] = hook.enabled
        return doc
    doc["url"] = shown_url(hook)
    doc["method"] = hook.method
    if hook.headers:
        doc["headers"] = {name: shown_header(name, value) for name, value in hook.headers}
    if hook.auth.type != "none":
        doc["auth"] = {"type": hook.auth.type, **{k: mask_value(v) for k, v in hook.auth.settings}}
    doc["format"] = hook.format
    if hook.format == "csv":
        csv = {"delimiter": hook.csv_delimiter, "header": hook.csv_header}
        doc["csv"] = _flow({**csv, "escape_formulas": hook.csv_escape_formulas})
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
    if hook.circuit != CircuitSpec():
        doc["circuit"] = _flow(_circuit(hook.circuit))
    doc["concurrency"] = hook.concurrency
    if hook.rate_limit is not None:
        rate = hook.rate_limit
        doc["rate_limit"] = f"{rate:g}/s" if rate >= 1 else f"{rate * 60:g}/m"
    doc["ordering"] = hook.ordering
    if hook.pause_after is not None:
        doc["pause_after"] = format_duration(hook.pause_after) if hook.pause_after else "0s"
    doc["enabled"] = hook.enabled
    if hook.allow_private_networks is not None:
        doc["allow_private_networks"] = hook.allow_private_networks
    if hook.allow_loopback is not None:
        doc["allow_loopback"] = hook.allow_loopback
    doc["max_payload_bytes"] = hook.max_payload_bytes
    if not hook.tls.verify or hook.tls.ca:
        doc["tls"] = _flow({"verify": hook.tls.verify, "ca": hook.tls.ca})
    return doc


def _field(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name}
    if spec.source is not None:
        out["from"] = spec.source
    elif spec.template is not None:
        out["template"] = spec.template
    else:
        out["value"] = mask_value(spec.value)
    extra = {"type": spec.type, "format": spec.format, "default": spec.default}
    out.update({k: v for k, v in extra.items() if v is not None})
    if spec.required:
        out["required"] = True
    return out


def _circuit(spec: CircuitSpec) -> dict[str, Any]:
    return {
        "failure_ratio": spec.failure_ratio,
        "minimum_calls": spec.minimum_calls,
        "window": format_duration(spec.window),
        "open_for": format_duration(spec.open_for),
        "probes": spec.probes,
    }


def _response(hook: Hook) -> dict[str, Any]:
    spec = hook.response
    out: dict[str, Any] = {}
    if spec.success_status:
        out["success_status"] = _flow(list(spec.success_status))
    if spec.expect or spec.capture:
        out["format"] = spec.format
    if spec.expect:
        out["expect"] = [_flow(condition.to_dict()) for condition in spec.expect]
    if spec.capture:
        out["capture"] = dict(spec.capture)
    return out


def _flow(value: Any) -> Any:
    """`value` written on one line (`{a: 1}`, `[x, y]`)."""
    node: Any = CommentedMap(value) if isinstance(value, dict) else CommentedSeq(value)
    node.fa.set_flow_style()
    return node
