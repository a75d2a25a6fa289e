"""Command-line parsing of the hook pause and resume commands, and what they print; how
`hooks show` ends for a hook the workers cannot use; what `--help` says of each command."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from dispatch_support import cloud_event

from dispatcher.cli import commands, hooks
from dispatcher.cli.main import _parser, main
from dispatcher.cli.output import pause_text
from dispatcher.hooks.definitions import unloadable
from dispatcher.model.health import Decision
from dispatcher.model.hook import Hook
from dispatcher.ops import manage, trial
from dispatcher.ops.pausing import Change
from dispatcher.ops.replay.selection import Selection


def test_hooks_resume_takes_an_id_and_an_optional_replay() -> None:
    args = _parser().parse_args(["hooks", "resume", "erp", "--replay", "--config", "d.yaml"])
    assert (args.id, args.replay, args.config) == ("erp", True, "d.yaml")
    assert _parser().parse_args(["hooks", "resume", "erp"]).replay is False
    assert _parser().parse_args(["hooks", "pause", "erp"]).id == "erp"


@pytest.mark.parametrize(
    "argv", [["hooks", "pause"], ["hooks", "resume"], ["hooks", "pause", "a", "--replay"]]
)
def test_a_pause_or_resume_without_an_id_or_with_a_stray_option_is_a_usage_error(
    argv: list[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_what_pause_and_resume_print() -> None:
    paused = Decision("erp", "paused", 0.0, 0.0, reason="manual")
    assert pause_text(Change(paused, changed=True)).startswith("paused erp since 1970-01-01T00")
    assert "already paused (by hand)" in pause_text(Change(paused, changed=False))
    resumed = Decision("erp", "resumed", 0.0, 60.0)
    change = Change(resumed, changed=True, lifted=paused)
    assert pause_text(change).startswith("resumed erp (paused since 1970-01-01T00:00:00.000Z)")
    assert change.replay == Selection(hook="erp", since=0.0)


def test_hooks_show_of_an_unusable_hook_prints_what_is_known_then_exits_1_saying_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    why = "hooks[0].auth.token: environment variable DISPATCHER_SECRET_ERP_TOKEN is not set"
    stand_in = unloadable("erp", b'{"id": "erp", "events": ["order.*"]}', why)
    usable = Hook.from_dict({"id": "crm", "events": ["customer.*"], "url": "https://c.test/"})
    in_force = {hook.id: hook for hook in (stand_in, usable)}
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr(manage, "hook_in_force", lambda _settings, hook_id: in_force[hook_id])
    monkeypatch.setattr(hooks, "_decisions", lambda _settings: {})

    assert main(["hooks", "show", "erp"]) == 1
    shown = capsys.readouterr()
    assert shown.out.startswith("# unusable: its events are dead-lettered with error kind config")
    assert shown.out.endswith("id: erp\nevents: [order.*]\nenabled: true\n")
    assert shown.err == (
        "error: hook erp is unusable, its events are dead-lettered with error kind config, no"
        f" request made: its stored definition does not load on this worker: {why}\n"
    )
    assert main(["hooks", "show", "crm"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "commands"),
    [
        (
            ["--help"],
            ["run", "admin", "healthcheck", "hooks", "replay", "decrypt", "produce", "demo"],
        ),
        (
            ["hooks", "--help"],
            ["validate", "list", "show", "delete", "pause", "resume", "apply", "test"],
        ),
    ],
)
def test_help_says_what_each_command_does(
    argv: list[str], commands: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    described = re.findall(r"^ {4}(\w+) +\S", capsys.readouterr().out, re.MULTILINE)
    assert sorted(described) == sorted(commands)


@pytest.mark.parametrize("rate", ["inf", "nan", "1e999", "0", "-2"])
def test_a_replay_at_a_rate_not_a_finite_number_above_0_is_refused_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    started: list[object] = []
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr(commands, "replay_command", lambda *args: started.append(args) or 0)
    assert main(["replay", "--dry-run", f"--rate={rate}"]) == 1
    assert "--rate: must be a finite number above 0" in capsys.readouterr().err
    assert started == []


def test_hooks_test_send_sends_no_event_the_hooks_filter_excludes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks_file = tmp_path / "hooks.yaml"
    hooks_file.write_text(
        "hooks:\n  - id: big\n    events: [order.paid]\n    url: https://erp.example.com/in\n"
        "    filter: [{path: data.total, gte: 100}]\n"
    )
    event = tmp_path / "event.json"
    event.write_text(json.dumps(cloud_event("order.paid", {"total": 12})))

    async def never(*_args: object) -> NoReturn:
        raise AssertionError("sent")

    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr(trial, "_send", never)
    argv = ["hooks", "test", "big", "--event", str(event), "--hooks-file", str(hooks_file)]
    assert main([*argv, "--send"]) == 1
    printed = capsys.readouterr().out
    assert "filter: expected data.total to be >= 100, got 12" in printed
    assert printed.endswith("not sent: the dispatcher would not send this event to this hook\n")


def test_hooks_validate_refuses_a_hook_ordered_by_key_for_workers_in_queue_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `dispatcher run` of the same configuration refuses it: a check in CI passed a file
    that the workers then would not start with."""
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./dispatcher.yaml
    hooks_file = tmp_path / "hooks.yaml"
    hooks_file.write_text(
        "hooks:\n  - id: ledger\n    events: [order.paid]\n    url: https://erp.example.com/in\n"
        "    ordering: key\n"
    )
    share = tmp_path / "share.yaml"
    share.write_text("consume: share\n")

    assert main(["hooks", "validate", str(hooks_file)]) == 0
    assert "1 hook valid" in capsys.readouterr().out

    assert main(["hooks", "validate", "--config", str(share), str(hooks_file)]) == 1
    said = capsys.readouterr().err
    assert f"{hooks_file}:5: hooks[0].ordering: consume: share gives no order" in said


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "--workers", "0"], "argument --workers: must be 1 or more, not 0"),
        (["run", "--workers", "-2"], "argument --workers: must be 1 or more, not -2"),
        (["run", "--workers", "x"], "argument --workers: not a whole number: 'x'"),
        (["replay", "--limit", "-1"], "argument --limit: must be 0 or more, not -1"),
        (
            ["produce", "--type", "t", "--data", "{}", "--binary", "--avro"],
            "argument --avro: not allowed with argument --binary",
        ),
    ],
)
def test_a_worker_count_below_one_or_two_encodings_at_once_are_usage_errors(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--workers 0` ran one worker, `--binary --avro` produced Avro: neither said a word."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(("option", "missing"), [("--type", "type"), ("--source", "source")])
def test_produce_publishes_no_event_a_worker_would_dead_letter_as_no_cloud_event(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str, missing: str
) -> None:
    """An empty --type or --source was published (exit 0), and every worker then dead-lettered
    the record as `decode`: a CloudEvent's type and source are never empty."""

    def unreachable(*_args: object) -> NoReturn:
        raise AssertionError("Kafka asked")

    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", unreachable)
    argv = ["produce", "--type", "order.paid", "--source", "/shop", "--data", "{}"]
    argv[argv.index(option) + 1] = ""
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"error: not published: CloudEvent lacks required attribute(s): {missing}"
        " (--type and --source may not be empty)\n"
    )


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser (`hooks test` ...), the top one first, with its name."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_option_and_argument_of_every_command_says_what_it_is_for() -> None:
    """`replay --help` named --since without saying it takes an age (2h) as well as a time,
    `decrypt --help` the --algorithm without the algorithms; `dispatcher --help` began with a
    note for the developers ("a thin shell ...")."""
    parser = _parser()
    assert parser.description is not None
    assert parser.description.startswith("The DUGAA dispatcher: delivers the events on Kafka")
    silent = [
        f"{name} {action.dest}"
        for name, each in _parsers(parser)
        for action in each._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert silent == []


def test_hooks_without_a_command_shows_the_hooks_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["hooks"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("usage: dispatcher hooks [-h]")
    assert "validate" in said


@pytest.mark.parametrize("form", [[], ["--binary"], ["--avro"]], ids=["json", "binary", "avro"])
def test_produce_writes_each_extension_in_the_form_it_publishes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], form: list[str]
) -> None:
    from dispatcher.kafka.avro import event_decoder
    from dispatcher.model.event import Record

    published: list[tuple[bytes, list[tuple[str, str | bytes | None]]]] = []
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", lambda _settings: None)
    monkeypatch.setattr("dispatcher.kafka.clients.made", lambda *_args: None)
    monkeypatch.setattr(
        commands, "_publish", lambda _p, _t, value, _k, headers: published.append((value, headers))
    )
    argv = ["produce", "--type", "order.paid", "--data", "{}", "--extension", "region=eu"]

    assert main([*argv, "--extension", "priority=2", *form]) == 0

    capsys.readouterr()
    [(value, headers)] = published
    encoded = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in headers)
    event = event_decoder({})(Record("dugaa.events", 0, 0, None, value, encoded))
    assert event.extensions == {"region": "eu", "priority": "2"}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("region", "not NAME=VALUE: 'region'"),
        ("Region=eu", "name 'Region': only a-z and 0-9 (CloudEvents)"),
        ("my_ext=1", "name 'my_ext': only a-z and 0-9 (CloudEvents)"),
        ("tenant=acme", "tenant is no extension of the producer's (use --tenant)"),
        ("subject=o-1", "subject is no extension of the producer's"),
    ],
)
def test_produce_refuses_an_extension_cloudevents_would_not_name_so(
    given: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["produce", "--type", "t", "--data", "{}", "--extension", given])
    assert exited.value.code == 2
    assert f"argument --extension: {said}" in capsys.readouterr().err


def test_a_replay_interrupted_while_it_reads_says_nothing_was_sent_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while a replay read a large dead-letter topic ended it silently with exit 0, as
    if it had replayed everything: a script went on as after a replay."""

    def interrupted(*_args: object) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", lambda _settings: None)
    monkeypatch.setattr("dispatcher.kafka.store.hooks_in_force", lambda _settings: None)
    monkeypatch.setattr("dispatcher.ops.replay.run.prepare", interrupted)

    assert main(["replay", "--hook", "erp"]) == 130
    assert "stopped while reading: nothing sent" in capsys.readouterr().out


def test_a_dry_run_of_more_letters_than_a_table_holds_prints_a_line_for_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run of 199000 letters drew them as one table: 3 minutes and 1.3 GB more than its
    reading took, before the first line came out; 1.5 million would have taken half an hour."""
    from dispatcher.cli.output import TABLE_ROWS
    from dispatcher.model.deadletter import DeadLetter
    from dispatcher.model.event import Record
    from dispatcher.ops.replay.plan import Plan

    def letter(n: int) -> DeadLetter:
        headers = (("dispatcher.hook.id", b"erp"), ("dispatcher.idempotency.key", b"msg_%d" % n))
        return DeadLetter.from_record(Record("dlq", 0, n, None, b"{}", headers))

    many = Plan(send=tuple(letter(n) for n in range(TABLE_ROWS + 1)))
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", lambda _settings: None)
    monkeypatch.setattr("dispatcher.kafka.store.hooks_in_force", lambda _settings: None)
    monkeypatch.setattr("dispatcher.ops.replay.run.prepare", lambda *_args: many)

    assert main(["replay", "--dry-run"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == [
        "letter", "event id", "event type", "hook", "error kind", "failed at", "webhook-id", "replay"
    ]  # fmt: skip
    assert lines[1].split("\t") == ["dlq/0/0", "", "", "erp", "", "", "msg_0", "would send"]
    assert len(lines) == 1 + TABLE_ROWS + 1 + 1  # the header, a line each, the summary
    assert lines[-1].startswith(f"dry run: nothing sent; selected {TABLE_ROWS + 1}")


def test_a_replay_of_a_hook_nobody_defined_says_so_beside_selecting_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --hook tx` (for tax) said `selected 0` and exit 0, as after a replay of a hook
    whose letters were all sent."""
    from dispatcher.ops.replay.plan import Plan
    from dispatcher.pipeline.match import HookIndex

    tax = Hook.from_dict({"id": "tax", "events": ["x"], "url": "https://a.example/"})
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", lambda _settings: None)
    monkeypatch.setattr("dispatcher.kafka.store.hooks_in_force", lambda _s: HookIndex([tax]))
    monkeypatch.setattr("dispatcher.ops.replay.run.prepare", lambda *_args: Plan())

    assert main(["replay", "--hook", "tx"]) == 0

    said = capsys.readouterr()
    assert "selected 0" in said.out
    assert "no hook tx is defined, nor does a dead letter name it (dispatcher hooks list)" in (
        said.err
    )
    assert main(["replay", "--hook", "tax"]) == 0
    assert "no hook" not in capsys.readouterr().err


def test_a_dry_run_piped_into_a_reader_that_stops_ends_quietly_as_a_shell_reports_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dispatcher replay --dry-run | head` ended in a BrokenPipeError traceback once `head`
    had its lines."""
    from dispatcher.cli.output import TABLE_ROWS
    from dispatcher.model.deadletter import DeadLetter
    from dispatcher.model.event import Record
    from dispatcher.ops.replay.plan import Plan

    headers = (("dispatcher.hook.id", b"erp"), ("dispatcher.idempotency.key", b"msg_0"))
    letters = [DeadLetter.from_record(Record("dlq", 0, n, None, b"{}", headers)) for n in range(2)]
    many = Plan(send=tuple(letters * (TABLE_ROWS // 2 + 1)))
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setattr("dispatcher.kafka.clients.check_reachable", lambda _settings: None)
    monkeypatch.setattr("dispatcher.kafka.store.hooks_in_force", lambda _settings: None)
    monkeypatch.setattr("dispatcher.ops.replay.run.prepare", lambda *_args: many)
    reader, writer = os.pipe()
    os.close(reader)  # the reader stopped: `head` has its lines
    with os.fdopen(writer, "w") as piped:
        monkeypatch.setattr(sys, "stdout", piped)
        assert main(["replay", "--dry-run"]) == 141
        monkeypatch.undo()
    assert "Traceback" not in capsys.readouterr().err
