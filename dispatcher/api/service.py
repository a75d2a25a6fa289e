"""The admin service's state: tokens and sessions, the hooks in force (file + store, followed),
the hook store to write to, the index and its follower, and the replay jobs. Built once by
`AdminService.start`; every route reaches it as `request.app.state.admin`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from dispatcher.api.auth import Tokens
from dispatcher.api.index.database import Index
from dispatcher.api.index.follow import IndexFollower
from dispatcher.api.sessions import LoginLimiter, Sessions
from dispatcher.config.settings import Settings
from dispatcher.hooks.loader import configured_hooks, plain
from dispatcher.kafka.clients import check_reachable
from dispatcher.kafka.follower import StoreFollower, follow_store
from dispatcher.kafka.health import HealthFollower
from dispatcher.kafka.store import HookStore
from dispatcher.model.health import Decision
from dispatcher.ops.pausing import Decisions, TopicDecisions
from dispatcher.ops.replay.jobs import ReplayJobs
from dispatcher.pipeline.match import HookIndex

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

INDEX_FILE = "index.sqlite3"
DECISION_WAIT = 10.0  # a pause or resume written, until this service has read it back


@dataclass
class AdminService:
    """Everything a request of the admin service may need."""

    settings: Settings
    tokens: Tokens
    index: Index
    sessions: Sessions
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    follower: StoreFollower | None = None
    store: HookStore | None = None
    indexer: IndexFollower | None = None
    health: HealthFollower | None = None
    pauses: Decisions | None = None  # where pauses and resumes are written
    tracing: TracerProvider | None = None  # set when OTEL_* names an endpoint
    replays: ReplayJobs = field(init=False)
    _hooks: HookIndex = field(default_factory=HookIndex)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.replays = ReplayJobs(self.settings, self.hooks, self.tracing)

    @classmethod
    def start(cls, settings: Settings, tracing: TracerProvider | None = None) -> AdminService:
        """Check the tokens (`ConfigError`), reach Kafka, read the hook store, start indexing.
        With `tracing`, requests and the replays they start are traced."""
        tokens = Tokens.from_settings(settings.admin)
        sessions = Sessions.from_settings(settings.admin)
        check_reachable(settings)
        index = Index(Path(settings.admin.data_dir) / INDEX_FILE)
        service = cls(settings, tokens, index, sessions, tracing=tracing)
        service._hooks = configured_hooks(settings)
        service.follower = follow_store(settings, service._hooks, service._set_hooks)
        if service.follower is not None:
            service.store = HookStore(settings)
        service.health = HealthFollower(settings)
        service.health.start()
        service.pauses = TopicDecisions(settings)
        service.indexer = IndexFollower(settings, index)
        service.indexer.start()
        return service

    def stop(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
        if self.health is not None:
            self.health.stop()
        if self.follower is not None:
            self.follower.stop()
        if self.store is not None:
            self.store.close()
        self.index.close()

    def hooks(self) -> HookIndex:
        """The hooks in force now (the store's changes arrive within a poll)."""
        with self._lock:
            return self._hooks

    def _set_hooks(self, hooks: HookIndex) -> None:
        with self._lock:
            self._hooks = hooks

    def decisions(self) -> dict[str, Decision]:
        """Every hook's latest health decision (paused, failing ...), as the workers see it."""
        return self.health.decisions() if self.health is not None else {}

    def read_back(self, decision: Decision) -> None:
        """Wait (bounded) until this service's own view holds `decision`, which was just
        written: the page shown next, and every later read, has it."""
        if self.health is not None:
            self.health.wait_for_decision(decision, DECISION_WAIT)

    def source_of(self, hook_id: str) -> str:
        stored = self.follower.stored if self.follower is not None else {}
        return "store" if hook_id in stored else "hooks file"

    def definition(self, hook_id: str) -> dict[str, Any] | None:
        """The definition of `hook_id` as written: the store's, else the hooks file's."""
        if self.follower is not None:
            found = self.follower.definition(hook_id)
            if found is not None:
                return found
        if not self.settings.hooks_file:
            return None
        text = Path(self.settings.hooks_file).read_text(encoding="utf-8")
        document = plain(YAML(typ="rt", pure=True).load(text)) or {}
        for raw in document.get("hooks") or ():
            if isinstance(raw, dict) and raw.get("id") == hook_id:
                return dict(raw)
        return None
