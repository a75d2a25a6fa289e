"""Avro schemas (the ones in schemas/ and those a registry serves) and reading and writing with them.

fastavro's compiled reader recurses on the C stack: a value nested a few thousand levels deep in a
recursive schema (the CloudEvents format's `CloudEventData`, or a producer's own tree type) crashes
the process instead of raising. Recursive schemas are therefore read with fastavro's pure-Python
reader, which raises `RecursionError` instead; every other schema gets the fast one.

fastavro is imported where it is used: a worker that meets no Avro never loads it (~7 MB).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from dispatcher.errors import DecodeError

BUNDLED = ("event", "cloudevents", "result", "deadletter")
NamedSchemas = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """A parsed Avro schema, its JSON text, and whether it refers to itself."""

    name: str
    text: str
    parsed: Any
    recursive: bool

    @classmethod
    def from_text(
        cls, text: str, *, named: NamedSchemas | None = None, recursive: bool = False
    ) -> AvroSchema:
        """Parse `text`; `named` holds the named types of schemas it references (and gains its own)."""
        import fastavro

        try:
            raw = json.loads(text)
            parsed = fastavro.parse_schema(raw, named_schemas=named if named is not None else {})
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a valid Avro schema: {exc}") from None
        name = parsed.get("name", parsed.get("type", "?")) if isinstance(parsed, dict) else "?"
        return cls(str(name), text, parsed, recursive or is_recursive(raw))


@cache
def bundled(name: str) -> AvroSchema:
    """One of the schemas in schemas/ (`event`, `cloudevents`, `result`, `deadletter`)."""
    if name not in BUNDLED:
        raise KeyError(f"no bundled schema {name!r} (known: {', '.join(BUNDLED)})")
    path = resources.files("dispatcher").joinpath("schemas", f"{name}.avsc")
    return AvroSchema.from_text(path.read_text(encoding="utf-8"))


@cache
def released(name: str) -> tuple[AvroSchema, ...]:
    """The released versions of a bundled schema (schemas/released/<name>-v<N>.avsc), oldest
    first: what earlier versions of the dispatcher wrote their records with."""
    if name not in BUNDLED:
        raise KeyError(f"no bundled schema {name!r} (known: {', '.join(BUNDLED)})")
    folder = resources.files("dispatcher").joinpath("schemas", "released")
    prefix = f"{name}-v"
    versions = sorted(
        (int(entry.name[len(prefix) : -len(".avsc")]), entry)
        for entry in folder.iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".avsc")
    )
    return tuple(AvroSchema.from_text(entry.read_text(encoding="utf-8")) for _, entry in versions)


def read(
    payload: bytes,
    schema: AvroSchema,
    *,
    reader: AvroSchema | None = None,
    record_names: bool = False,
) -> Any:
    """Decode one schemaless Avro value, written with `schema`, that must fill `payload` exactly.

    `reader` resolves the value into another version of the schema. With `record_names`, a record
    chosen in a union comes back as `(full name, fields)`. Raises `DecodeError` saying why.
    """
    import fastavro
    from fastavro import _read_py

    stream = io.BytesIO(payload)
    recursive = schema.recursive or (reader is not None and reader.recursive)
    decode = _read_py.schemaless_reader if recursive else fastavro.schemaless_reader
    try:
        value = decode(
            stream,
            schema.parsed,
            None if reader is None else reader.parsed,
            return_record_name=record_names,
        )
    except RecursionError:
        raise DecodeError(f"Avro value for {schema.name} nests too deeply") from None
    except Exception as exc:  # fastavro raises many kinds (EOFError, IndexError...) on bad input
        raise DecodeError(f"value is not valid Avro for {schema.name}: {_describe(exc)}") from None
    left = len(payload) - stream.tell()
    if left:
        raise DecodeError(f"{left} byte(s) left over after the Avro value for {schema.name}")
    return value


def write(value: Any, schema: AvroSchema) -> bytes:
    """Encode `value` as schemaless Avro; `ValueError` naming the schema when it does not fit."""
    import fastavro

    stream = io.BytesIO()
    try:
        fastavro.schemaless_writer(stream, schema.parsed, value)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise ValueError(
            f"value does not fit Avro schema {schema.name}: {_describe(exc)}"
        ) from None
    return stream.getvalue()


def is_recursive(raw: Any) -> bool:
    """Whether a schema (as JSON) uses a named type inside that type's own definition."""
    return any(True for _ in _self_references(raw, ()))


def _self_references(node: Any, enclosing: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, str):
        if _short(node) in enclosing:
            yield node
    elif isinstance(node, list):
        for branch in node:
            yield from _self_references(branch, enclosing)
    elif isinstance(node, Mapping):
        kind = node.get("type")
        if kind in ("record", "error"):
            inside = (*enclosing, _short(str(node.get("name", ""))))
            for field in node.get("fields", ()):
                yield from _self_references(field.get("type"), inside)
        elif kind == "array":
            yield from _self_references(node.get("items"), enclosing)
        elif kind == "map":
            yield from _self_references(node.get("values"), enclosing)
        elif isinstance(kind, list | Mapping):
            yield from _self_references(kind, enclosing)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
