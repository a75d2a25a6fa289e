"""What a replay reads from each dead letter, on the real broker against a real receiver: the
event as the worker read it (Avro too), none from a letter written without it, and only what
the hook, as it is defined now, still takes."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Outgoing, consume_all, create_topic, produce
from registry_support import FakeRegistry, avro_erp_hook
from rich.console import Console

from dispatcher.cli.commands import replay_command
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.avro import produce_value
from dispatcher.kafka.store import hooks_in_force
from dispatcher.model.event import Event
from dispatcher.model.outcome import VALUE_OMITTED
from dispatcher.ops.replay.run import ReplayOptions, prepare, run_replay
from dispatcher.ops.replay.selection import Selection, selection_from


def test_the_dead_letters_of_avro_events_are_replayed_as_the_worker_read_them(
    kafka_bootstrap: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    config = {"url": registry.url}
    with Receiver({"/erp": Behaviour(status=503)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [avro_erp_hook(receiver.url, retry={"max_attempts": 1})],
            extra={"schema_registry": config},
        )
        records = []
        for i in range(2):
            event = Event.from_dict(cloud_event("order.placed", {"order_id": f"A{i}"}))
            value, content_type = produce_value(
                event, topic=deployment.events, schema_registry=config
            )
            records.append(Outgoing(value, headers=(("content-type", content_type.encode()),)))
        deployment.produce_raw(records)
        with deployment.worker():
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 2, timeout=60)
        receiver.routes["/erp"] = Behaviour()  # the third party is fixed
        settings = deployment.settings

        plan, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))

        assert (summary.selected, summary.delivered, summary.failed, summary.skipped) == (
            2,
            2,
            0,
            0,
        )
        replayed = receiver.received("/erp")[2:]
        assert sorted(json.loads(r.body)["OrderNo"] for r in replayed) == ["A0", "A1"]
        assert sorted(r.headers["webhook-id"] for r in replayed) == sorted(
            (d.header("dispatcher.idempotency.key") or b"").decode() for d in letters
        )
        assert sorted(plan.event_of(letter)[1] for letter in plan.send) == ["order.placed"] * 2


def test_a_letter_written_without_its_event_is_not_replayed_and_says_where_the_original_is(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never an empty body, and never counted as "failed again": nothing was sent."""
    with Receiver({"/crm": Behaviour(status=400)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("crm", f"{receiver.url}/crm", ["order.*"])]
        )
        create_topic(kafka_bootstrap, deployment.dead_letter, config={"max.message.bytes": "20000"})
        noise = base64.b64encode(os.urandom(45_000)).decode()  # 60 KB that no codec shrinks much
        deployment.produce_events([cloud_event("order.paid", {"blob": noise}, event_id="big")])
        with deployment.worker():
            [letter] = consume_all(kafka_bootstrap, deployment.dead_letter, 1, timeout=60)
        assert letter.value is None
        assert letter.header(VALUE_OMITTED) is not None
        receiver.routes["/crm"] = Behaviour()
        settings = deployment.settings
        original = f"the original is at {deployment.events}[0]@0"

        dry = ReplayOptions(Selection(), dry_run=True)
        assert replay_command(settings, dry, Console(file=io.StringIO())) == 0
        listed = capsys.readouterr().out
        plan, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))

        assert (summary.selected, summary.delivered, summary.failed, summary.skipped) == (
            1,
            0,
            0,
            1,
        )
        [(_, why)] = plan.skip
        assert why.startswith("no event to send: the event's value was left out of this record")
        assert why.endswith(original)
        assert "would send" not in listed
        assert "no event to send" in listed
        assert "skipped 1" in listed
        assert len(receiver.received("/crm")) == 1  # the first attempt only
        assert deployment.written(deployment.dead_letter) == 1  # no new dead letter either


def test_an_event_the_hook_as_edited_no_longer_takes_is_not_replayed_to_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The hook served every tenant when its letters failed; it serves only acme now: another
    tenant's event must not reach acme's third party by a replay any more than by a worker."""
    with Receiver({"/sms": Behaviour(status=503)}) as receiver:
        sms = hook("sms", f"{receiver.url}/sms", ["order.shipped"], retry={"max_attempts": 1})
        deployment = Deployment(kafka_bootstrap, tmp_path, [sms])
        events = [
            {**cloud_event("order.shipped", {"n": i}, event_id=f"{tenant}-{i}"), "tenant": tenant}
            for i, tenant in enumerate(["acme", "globex", "acme"])
        ]
        deployment.produce_events(events)
        with deployment.worker():
            consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
            collect_until(kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 3, 30)
        receiver.routes["/sms"] = Behaviour()
        deployment.hooks = [{**sms, "tenant": "acme", "filter": [{"path": "data.n", "lt": 2}]}]
        deployment.write()
        settings = deployment.settings

        plan, summary = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))

        assert (summary.selected, summary.delivered, summary.skipped) == (3, 1, 2)
        assert [plan.event_of(letter)[0] for letter in plan.send] == ["acme-0"]
        assert summary.skipped_reasons == {
            "hook sms now takes only the events of tenant acme": 1,
            "hook sms no longer takes this event: its filter does not admit it": 1,
        }
        replayed = [json.loads(r.body) for r in receiver.received("/sms")[3:]]
        assert replayed == [{"n": 0}]


@pytest.mark.parametrize("since", ["1970-01-01T00:00:00Z", "1900-01-01"])
def test_a_replay_since_1970_or_before_selects_every_dead_letter(
    kafka_bootstrap: str, tmp_path: Path, since: str
) -> None:
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("erp", "https://erp.example.com/", ["order.placed"])]
    )
    create_topic(kafka_bootstrap, deployment.dead_letter)
    letter = Outgoing(
        json.dumps(cloud_event("order.placed", {"order_id": "A1"})),
        headers=(("dispatcher.hook.id", b"erp"), ("dispatcher.idempotency.key", b"msg_a1")),
    )
    produce(kafka_bootstrap, deployment.dead_letter, [letter])
    settings = deployment.settings
    selection = selection_from(now=time.time(), since=since)
    plan = prepare(settings, hooks_in_force(settings), selection)
    assert [d.hook_id for d in plan.send] == ["erp"]


def test_the_replay_command_shows_how_far_it_has_read_the_dead_letters_and_the_results(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A dead-letter topic of millions of letters takes minutes to read: the command said
    nothing meanwhile, as if it hung."""
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("erp", "https://erp.example.com/", ["order.placed"])]
    )
    create_topic(kafka_bootstrap, deployment.dead_letter, 2)
    letters = [
        Outgoing(
            json.dumps(cloud_event("order.placed", {"order_id": f"A{i}"})),
            key=f"k{i}",
            headers=(
                ("dispatcher.hook.id", b"erp"),
                ("dispatcher.idempotency.key", f"msg_{i}".encode()),
            ),
        )
        for i in range(5)
    ]
    produce(kafka_bootstrap, deployment.dead_letter, letters)
    console = Console(file=io.StringIO(), width=120)

    code = replay_command(deployment.settings, ReplayOptions(Selection(), dry_run=True), console)

    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert code == 0
    assert re.search(r"reading dead letters .* 5/5", shown), shown
    assert re.search(r"reading results .* 0/0", shown), shown
