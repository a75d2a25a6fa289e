"""Command-line parsing of the hook pause and resume commands, and what they print."""

from __future__ import annotations

import pytest

from dispatcher.cli.main import _parser, main
from dispatcher.cli.output import pause_text
from dispatcher.model.health import Decision
from dispatcher.ops.pausing import Change
from dispatcher.ops.replay.plan import Selection


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
