"""Schema evolution: each schema in schemas/ stays compatible with its released versions, both ways.

Compatibility is checked through fastavro's schema resolution on generated records: what the
released schema wrote, the current one reads (consumers upgrade first), and what the current one
writes, the released one reads (producers upgrade first). A reader-only field must have a default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro.utils import generate_many

from dispatcher.errors import DecodeError
from dispatcher.kafka.avro import AvroEventDecoder, RegistrySchemas, bundled
from dispatcher.kafka.avro.schemas import BUNDLED, AvroSchema, read, write
from dispatcher.kafka.avro.wire import frame
from dispatcher.kafka.results import AvroResultSerializer, read_avro_result, read_result
from dispatcher.model.event import Record
from dispatcher.model.outcome import Outcome, Source

SCHEMAS = Path(__file__).parents[3] / "schemas"
SAMPLES = 25


def released(name: str, version: int = 1) -> AvroSchema:
    return AvroSchema.from_text((SCHEMAS / "released" / f"{name}-v{version}.avsc").read_text())


# every released version of every bundled schema, as (name, version)
RELEASED = sorted(
    (name, int(path.stem.rsplit("-v", 1)[1]))
    for name in BUNDLED
    for path in (SCHEMAS / "released").glob(f"{name}-v*.avsc")
)


def changed(schema: AvroSchema, change: Any) -> AvroSchema:
    """`schema` with its JSON edited by `change`: a made-up next (or previous) version."""
    raw = json.loads(schema.text)
    change(raw["fields"])
    return AvroSchema.from_text(json.dumps(raw))


def samples(schema: AvroSchema) -> list[Any]:
    """Records to write with `schema`: generated ones, or (recursive schemas, where generation may
    not end) one of each data branch of the CloudEvents format."""
    if not schema.recursive:
        return list(generate_many(schema.parsed, SAMPLES))
    tree = ("io.cloudevents.CloudEventData", {"value": {"a": [{"value": {"b": "c"}}]}})
    datas = [b"raw", None, True, {"k": tree, "n": 1.5}, [{"value": {}}], 2.0, "text"]
    attribute = {"id": "1", "type": "t", "source": "s", "n": 3, "b": b"x", "z": None}
    return [{"attribute": attribute, "data": data} for data in datas]


def incompatibilities(writer: AvroSchema, reader: AvroSchema) -> list[str]:
    """Why records written with `writer` cannot be read with `reader` (empty when they can)."""
    problems: list[str] = []
    names = {field["name"] for field in reader.parsed["fields"]}
    for record in samples(writer):
        payload = write(record, writer)
        try:
            resolved = read(payload, writer, reader=reader)
        except DecodeError as exc:
            problems.append(str(exc))
            continue
        own = read(payload, writer)
        for field in reader.parsed["fields"]:
            name = field["name"]
            expected = own[name] if name in own else field.get("default")
            if resolved[name] != expected:
                problems.append(f"{name}: read {resolved[name]!r}, wrote {expected!r}")
        if set(resolved) != names:
            problems.append(f"fields {sorted(resolved)} are not the reader's {sorted(names)}")
    return problems


@pytest.mark.parametrize(("name", "version"), RELEASED)
def test_current_schema_reads_what_a_released_version_wrote(name: str, version: int) -> None:
    assert incompatibilities(released(name, version), bundled(name)) == []


@pytest.mark.parametrize(("name", "version"), RELEASED)
def test_a_released_version_reads_what_the_current_schema_writes(name: str, version: int) -> None:
    assert incompatibilities(bundled(name), released(name, version)) == []


def test_every_bundled_schema_has_a_released_version_and_results_their_second() -> None:
    assert {name for name, _ in RELEASED} == set(BUNDLED)
    assert ("result", 2) in RELEASED  # before hook_tenant


def add_region(fields: list[dict[str, Any]]) -> None:
    fields.append({"name": "region", "type": ["null", "string"], "default": None, "doc": "x"})


@pytest.mark.parametrize("name", ["event", "result", "deadletter"])
def test_a_version_adding_an_optional_field_is_compatible_both_ways(name: str) -> None:
    current = bundled(name)
    next_version = changed(current, add_region)
    assert incompatibilities(current, next_version) == []
    assert incompatibilities(next_version, current) == []


def test_field_added_by_a_newer_writer_is_dropped_by_an_older_reader() -> None:
    newer = changed(bundled("result"), add_region)
    record = {**samples(bundled("result"))[0], "region": "eu-west"}
    assert "region" not in read(write(record, newer), newer, reader=bundled("result"))
    older_record = {k: v for k, v in record.items() if k != "region"}
    assert (
        read(write(older_record, bundled("result")), bundled("result"), reader=newer)["region"]
        is None
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda f: f.append({"name": "channel", "type": "string", "doc": "x"}), "channel"),
        (lambda f: f.__setitem__(0, {**f[0], "type": "long"}), "string is not long"),
        (lambda f: f.__delitem__(0), "event_id"),
    ],
)
def test_incompatible_versions_are_caught(change: Any, why: str) -> None:
    broken = changed(bundled("result"), change)
    problems = incompatibilities(bundled("result"), broken) + incompatibilities(
        broken, bundled("result")
    )
    assert any(why in problem for problem in problems), problems


def test_events_from_a_producer_on_a_newer_event_schema_still_decode() -> None:
    client = SchemaRegistryClient.new_client({"url": "mock://evolution-events"})
    newer = changed(bundled("event"), add_region)
    schema_id = client.register_schema("dugaa.events-value", Schema(newer.text, "AVRO"))
    envelope = {"id": "e1", "type": "order.shipped", "source": "/shop", "region": "eu"}
    payload = write({**envelope, "data": b'{"n":1}'}, newer)
    event = AvroEventDecoder(RegistrySchemas(client))(
        Record("t", 0, 0, None, frame(schema_id, payload), ())
    )
    assert (event.id, event.data) == ("e1", {"n": 1})


def test_results_written_with_an_older_or_newer_schema_read_into_the_current_one() -> None:
    client = SchemaRegistryClient.new_client({"url": "mock://evolution-results"})
    outcome = Outcome("e1", "t", "h", "delivered", 1, "k", Source("t", 0, 1), 1.0, 2.0)
    for version in (
        released("result", 1),
        released("result", 2),
        changed(bundled("result"), add_region),
    ):
        schema_id = client.register_schema("dugaa.dispatch.results-value", Schema(version.text))
        fields = read(AvroResultSerializer().serialize(outcome.to_record()), bundled("result"))
        names = {field["name"] for field in version.parsed["fields"]}
        record = {name: value for name, value in fields.items() if name in names}
        if "region" in names:
            record["region"] = "eu"
        value = frame(schema_id, write(record, version))
        assert read_avro_result(value, RegistrySchemas(client))["event_id"] == "e1"


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("framed", [True, False], ids=["registry", "schemaless"])
def test_a_result_an_earlier_release_wrote_is_read_as_any_result_is(
    framed: bool, version: int
) -> None:
    """What replay (its delivered webhook-ids) and the admin index read results with: records
    that workers of earlier releases wrote (result-v1.avsc, result-v2.avsc) included."""
    schema = released("result", version)
    outcome = Outcome("e1", "t", "h", "delivered", 1, "k", Source("t", 0, 1), 1.0, 2.0,
                      tenant="acme", hook_tenant="acme")  # fmt: skip
    fields = read(AvroResultSerializer().serialize(outcome.to_record()), bundled("result"))
    names = {field["name"] for field in schema.parsed["fields"]}
    value = write({name: value for name, value in fields.items() if name in names}, schema)
    registry = None
    if framed:
        client = SchemaRegistryClient.new_client({"url": f"mock://results-of-v{version}"})
        registry = RegistrySchemas(client)
        value = frame(registry.register("dugaa.dispatch.results-value", schema), value)

    result = read_result(value, registry)

    assert result is not None
    assert (result["idempotency_key"], result["outcome"]) == ("k", "delivered")
    assert result.get("tenant") == ("acme" if version >= 2 else None)
    assert "hook_tenant" not in result  # a version before it: the operator's only
