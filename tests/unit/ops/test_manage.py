"""Applying a hooks file to the store refuses what the workers could not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.errors import ConfigError
from dispatcher.ops.manage import apply_hooks


def test_in_queue_mode_an_apply_refuses_hooks_ordered_by_key_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - id: sms\n    events: [a]\n    url: https://sms.example/\n"
        "  - id: ledger\n    events: [a]\n    url: https://ledger.example/\n    ordering: key\n",
        encoding="utf-8",
    )
    settings = Settings(
        consume="share",
        kafka={"bootstrap.servers": "127.0.0.1:1"},
        topics=Topics(hooks="store"),
    )

    with pytest.raises(ConfigError, match=r"hooks\[1\].*consume: share gives no order"):
        apply_hooks(settings, path)  # refused before Kafka is asked anything
