"""The admin API on `http_port`: hooks in the store, a test endpoint, outcomes, dead letters and
replays, described at `/openapi.json`.

Reads are open. Writes need `Authorization: Bearer <admin.token>` (401 without it or with
another); when no `admin.token` is configured the API is read-only and writes get 403.
Responses never carry a secret: hooks are shown as `hooks show` shows them, masked.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from dispatcher.api.openapi import openapi_document
from dispatcher.config.secrets import resolve
from dispatcher.config.settings import Settings
from dispatcher.engine.status import Request, StatusServer, json_response
from dispatcher.errors import DecodeError, KafkaUnavailable
from dispatcher.hooks.definitions import examine
from dispatcher.hooks.describe import describe
from dispatcher.kafka.follower import StoreFollower
from dispatcher.kafka.results import recent_outcomes
from dispatcher.kafka.scan import Start, scan
from dispatcher.kafka.store import HookStore
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.ops import trial
from dispatcher.ops.replay.jobs import ReplayJobs
from dispatcher.ops.replay.plan import parse_moment, selection_from
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.pipeline.match import HookIndex

Response = tuple[int, str, bytes]
Params = dict[str, str]
APPLY_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: method, path pattern (`{id}` is one segment), handler, whether it writes."""

    method: str
    pattern: str
    handler: str
    write: bool

    def match(self, method: str, path: str) -> Params | None:
        if method != self.method:
            return None
        want, got = self.pattern.strip("/").split("/"), path.strip("/").split("/")
        if len(want) != len(got):
            return None
        params: Params = {}
        for part, value in zip(want, got, strict=True):
            if part.startswith("{"):
                if not value:
                    return None
                params[part[1:-1]] = value
            elif part != value:
                return None
        return params


ROUTES = (
    Route("GET", "/api/hooks", "list_hooks", False),
    Route("POST", "/api/hooks", "create_hook", True),
    Route("GET", "/api/hooks/{id}", "show_hook", False),
    Route("PUT", "/api/hooks/{id}", "put_hook", True),
    Route("DELETE", "/api/hooks/{id}", "delete_hook", True),
    Route("POST", "/api/hooks/{id}/test", "test_hook", False),  # sending needs the token
    Route("GET", "/api/hooks/{id}/outcomes", "outcomes", False),
    Route("GET", "/api/dead-letters", "dead_letters", False),
    Route("GET", "/api/replays", "list_replays", False),
    Route("POST", "/api/replays", "start_replay", True),
    Route("GET", "/api/replays/{id}", "show_replay", False),
)


class AdminApi:
    """The handlers; `register` puts them on a worker's `StatusServer`."""

    def __init__(
        self,
        settings: Settings,
        hooks: Callable[[], HookIndex],
        follower: StoreFollower | None,
        store: HookStore | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.follower = follower
        self.store = store or (HookStore(settings) if follower is not None else None)
        self.replays = ReplayJobs(settings, hooks)

    def register(self, server: StatusServer) -> None:
        server.route("GET", "/openapi.json", lambda _r: json_response(200, openapi_document()))
        for method in sorted({route.method for route in ROUTES}):
            server.route(method, "/api/", self.handle)

    def handle(self, request: Request) -> Response:
        """Route `request`: 404 for an unknown path, 405 for a known path with another method."""
        for route in ROUTES:
            params = route.match(request.method, request.path)
            if params is None:
                continue
            if route.write:
                refused = self.refuse_write(request)
                if refused is not None:
                    return refused
            handler: Callable[[Request, Params], Response] = getattr(self, route.handler)
            try:
                return handler(request, params)
            except _BadBody:
                return _error(400, "the body is not JSON")
            except KafkaUnavailable as exc:
                return _error(503, str(exc))
        if any(r.match(r.method, request.path) is not None for r in ROUTES):
            return _error(405, "method not allowed")
        return _error(404, "not found")

    def refuse_write(self, request: Request) -> Response | None:
        """403 when the API is read-only, 401 without the right bearer token, else None."""
        token = self.settings.admin_token
        if token is None:
            return _error(403, "the admin API is read-only: no admin.token is configured")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = resolve(token, where="admin.token").reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return _error(401, "writes need Authorization: Bearer <admin.token>")
        return None

    # -- hooks ------------------------------------------------------------------------------

    def list_hooks(self, _request: Request, _params: Params) -> Response:
        return json_response(200, {"hooks": [self._shown(h) for h in self.hooks()]})

    def show_hook(self, _request: Request, params: Params) -> Response:
        hook = self.hooks().get(params["id"])
        if hook is None:
            return _error(404, f"no hook {params['id']!r}")
        return json_response(200, self._shown(hook))

    def create_hook(self, request: Request, _params: Params) -> Response:
        raw = _body(request)
        if isinstance(raw, dict) and self.hooks().get(str(raw.get("id"))) is not None:
            return _error(409, f"hook {raw['id']!r} exists: PUT /api/hooks/{raw['id']} replaces it")
        return self._apply(raw, created=True)

    def put_hook(self, request: Request, params: Params) -> Response:
        raw = _body(request)
        if isinstance(raw, dict):
            raw.setdefault("id", params["id"])
            if raw["id"] != params["id"]:
                return _error(422, "the body's id differs from the id in the path")
        return self._apply(raw, created=self.hooks().get(params["id"]) is None)

    def delete_hook(self, _request: Request, params: Params) -> Response:
        hook_id = params["id"]
        if self.store is None or self.follower is None:
            return _error(409, "the hook store is switched off (topics.hooks is empty)")
        if hook_id not in self.follower.stored:
            if self.hooks().get(hook_id) is not None:
                return _error(409, f"hook {hook_id!r} is defined in the hooks file, not the store")
            return _error(404, f"no hook {hook_id!r}")
        self.follower.wait_for(self.store.delete(hook_id), APPLY_WAIT)
        remaining = self.hooks().get(hook_id)
        return json_response(
            200, {"deleted": hook_id, "in_force": None if remaining is None else "hooks file"}
        )

    def test_hook(self, request: Request, params: Params) -> Response:
        hook = self.hooks().get(params["id"])
        if hook is None:
            return _error(404, f"no hook {params['id']!r}")
        document = _body(request)
        if not isinstance(document, dict) or not isinstance(document.get("event"), dict):
            return _error(422, 'the body must be {"event": {a CloudEvent}, "send": false}')
        if document.get("send") is True:
            refused = self.refuse_write(request)
            if refused is not None:
                return refused
        try:
            event = Event.from_dict(document["event"])
        except DecodeError as exc:
            return _error(422, f"event: {exc}")
        tried = trial.prepare(hook, event)
        if tried.request is None or tried.shown is None:
            failure = tried.failure
            assert failure is not None
            verdict = {"ok": False, "error_kind": failure.kind, "error": str(failure)}
            return json_response(200, {"verdict": verdict})
        shown: dict[str, Any] = {"request": tried.shown.as_dict()}
        if document.get("send") is True:
            shown["verdict"] = trial.send(self.settings, hook, tried.request).as_dict()
        return json_response(200, shown)

    def outcomes(self, request: Request, params: Params) -> Response:
        limit = _int(parse_qs(request.query).get("limit", ["20"])[0], 20)
        found = recent_outcomes(self.settings, params["id"], max(1, min(limit, 500)))
        return json_response(200, {"hook_id": params["id"], "outcomes": found})

    def dead_letters(self, request: Request, _params: Params) -> Response:
        since = parse_qs(request.query).get("since", [None])[0]
        try:
            start = (
                Start() if since is None else Start(int(parse_moment(since, time.time()) * 1000))
            )
        except ValueError as exc:
            return _error(422, f"since: {exc}")
        by_hook: dict[str, dict[str, int]] = {}
        total = 0
        for record in scan(self.settings, self.settings.topics.dead_letter, start):
            letter = DeadLetter.from_record(record)
            kinds = by_hook.setdefault(letter.hook_id or "(none)", {})
            kind = letter.error_kind or "unknown"
            kinds[kind] = kinds.get(kind, 0) + 1
            total += 1
        return json_response(200, {"total": total, "by_hook": by_hook})

    # -- replays ----------------------------------------------------------------------------

    def start_replay(self, request: Request, _params: Params) -> Response:
        document = _body(request)
        if document is None:
            document = {}
        if not isinstance(document, dict):
            return _error(422, "the body must be a JSON object")
        try:
            selection = selection_from(
                now=time.time(),
                hook=document.get("hook"),
                since=document.get("since"),
                until=document.get("until"),
                error_kind=document.get("error_kind"),
                limit=document.get("limit"),
            )
            rate = document.get("rate")
            if rate is not None and (not isinstance(rate, int | float) or rate <= 0):
                raise ValueError("rate: must be a number > 0")
        except ValueError as exc:
            return _error(422, str(exc))
        options = ReplayOptions(selection, rate, bool(document.get("dry_run", False)))
        job = self.replays.start(options)
        if job is None:
            return _error(409, "a replay is already running")
        return json_response(202, job.as_dict())

    def list_replays(self, _request: Request, _params: Params) -> Response:
        return json_response(200, {"replays": [job.as_dict() for job in self.replays.all()]})

    def show_replay(self, _request: Request, params: Params) -> Response:
        job = self.replays.get(params["id"])
        if job is None:
            return _error(404, f"no replay {params['id']!r}")
        return json_response(200, job.as_dict())

    # -- helpers ----------------------------------------------------------------------------

    def _apply(self, raw: Any, *, created: bool) -> Response:
        if self.store is None or self.follower is None:
            return _error(409, "the hook store is switched off (topics.hooks is empty)")
        checked = examine(raw, "hook")
        if isinstance(checked, list):
            listed = [{"path": p.path, "message": p.message} for p in checked]
            return json_response(422, {"error": "invalid hook definition", "problems": listed})
        hook_id = checked.hook.id
        if not self.follower.wait_for(self.store.apply([checked]), APPLY_WAIT):
            return json_response(202, {"id": hook_id, "status": "stored, not yet in force here"})
        hook = self.hooks().get(hook_id)
        return json_response(201 if created else 200, None if hook is None else self._shown(hook))

    def _shown(self, hook: Hook) -> dict[str, Any]:
        stored = self.follower.stored if self.follower is not None else {}
        shown: dict[str, Any] = json.loads(json.dumps(describe(hook), default=str))
        shown["source"] = "store" if hook.id in stored else "hooks file"
        return shown


def register_admin_api(
    server: StatusServer,
    settings: Settings,
    hooks: Callable[[], HookIndex],
    follower: StoreFollower | None,
) -> AdminApi:
    """Put the admin API on `server` (for the worker)."""
    api = AdminApi(settings, hooks, follower)
    api.register(server)
    return api


def _body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise _BadBody from None


class _BadBody(Exception):
    """Raised when a request body is not JSON."""


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})
