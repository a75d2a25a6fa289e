"""The Schema Registry wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro value."""

from __future__ import annotations

import struct

MAGIC = 0
_PREFIX = struct.Struct(">bI")
PREFIX_SIZE = _PREFIX.size
MAX_SCHEMA_ID = 2**32 - 1


def frame(schema_id: int, payload: bytes) -> bytes:
    """`payload` prefixed with the magic byte and `schema_id`."""
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema id {schema_id} does not fit in 4 bytes")
    return _PREFIX.pack(MAGIC, schema_id) + payload


def unframe(value: bytes) -> tuple[int, bytes] | None:
    """The schema id and Avro payload of a framed value, or None when `value` is not framed.

    A schemaless event never starts with a zero byte (it would be an empty id or attribute map).
    """
    if len(value) < PREFIX_SIZE or value[0] != MAGIC:
        return None
    _, schema_id = _PREFIX.unpack_from(value)
    return schema_id, value[PREFIX_SIZE:]
