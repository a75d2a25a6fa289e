"""A queue-mode worker refuses an ordered hook of its hooks file at start, before Kafka."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.worker import Worker
from dispatcher.errors import ConfigError
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def test_a_hooks_file_hook_ordered_by_key_stops_a_share_worker_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_kafka(self: Worker) -> None:
        raise AssertionError("refused before the cluster is asked")

    monkeypatch.setattr(Worker, "_prepare_cluster", no_kafka)
    ledger = Hook.from_dict(
        {"id": "ledger", "events": ["a"], "url": "https://l.example/", "ordering": "key"}
    )
    worker = Worker(
        Settings(consume="share"), HookIndex([ledger]), Metrics(CollectorRegistry()), repr
    )

    with pytest.raises(ConfigError, match="ordering: key: ledger"):
        asyncio.run(worker._main(install_signals=False))
