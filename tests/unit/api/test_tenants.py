"""Tenant-scoped tokens on every API route, without Kafka: another tenant's hook, and a hook
without a tenant, answer 404 as if they did not exist; lists, look-ups, counts and replays hold
only the tenant's own; writes give a hook the token's tenant and never move one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import ADMIN, ADMIN_TOKEN, MemoryDecisions, MemoryStore
from dispatch_support import cloud_event
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dispatcher.api.app import API_ROUTERS, create_app
from dispatcher.api.auth import Tokens
from dispatcher.api.index.database import Index
from dispatcher.api.index.rows import AttemptRow, LetterRow, ResultRow
from dispatcher.api.service import AdminService
from dispatcher.api.sessions import Sessions
from dispatcher.config.admin import Admin, AdminToken
from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings
from dispatcher.kafka.results import JsonResultSerializer
from dispatcher.model.attempt import AttemptRecord
from dispatcher.model.deadletter import DeadLetter, dead_letter_headers
from dispatcher.model.event import Record
from dispatcher.model.outcome import Outcome, Source
from dispatcher.ops.replay import jobs as jobs_module
from dispatcher.ops.replay.jobs import TENANT_RUNNING_AT_MOST, ReplayJob
from dispatcher.ops.replay.plan import Plan, Summary
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.ops.replay.selection import Selection

ACME_TOKEN = "acme-admin-token-0123456789"
ACME_VIEWER_TOKEN = "acme-viewer-token-0123456789"
ACME = {"Authorization": f"Bearer {ACME_TOKEN}"}
ACME_VIEWER = {"Authorization": f"Bearer {ACME_VIEWER_TOKEN}"}
HIDDEN = ("globex-sms", "everyone")  # another tenant's hook; a hook of every tenant
ROUTES = sorted(
    (method, route.path)
    for router in API_ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods
)


def definition(hook_id: str, tenant: str | None = None, **extra: Any) -> dict[str, Any]:
    raw = {"id": hook_id, "events": ["order.shipped"], "url": f"https://{hook_id}.example/"}
    return {**raw, **({"tenant": tenant} if tenant else {}), **extra}


# each hook's tenant, as the workers write it on every record of the hook
HOOK_TENANTS = {"acme-sms": "acme", "globex-sms": "globex", "everyone": None}


def outcome(hook_id: str, event_id: str, tenant: str, hook_tenant: str | None = None) -> ResultRow:
    return ResultRow(
        event_id=event_id,
        event_type="order.shipped",
        hook_id=hook_id,
        outcome="dead_lettered",
        attempts=1,
        http_status=500,
        latency_ms=2.0,
        error_kind="http_status",
        error="500",
        idempotency_key=f"msg_{hook_id}_{event_id}",
        completed_at=1000.0,
        where=f"results/0/{hook_id}-{event_id}",
        tenant=tenant,
        hook_tenant=hook_tenant or HOOK_TENANTS.get(hook_id),
    )


def letter(hook_id: str, event_id: str, tenant: str, hook_tenant: str | None = None) -> LetterRow:
    return LetterRow(
        where=f"dlq/0/{hook_id}-{event_id}",
        hook_id=hook_id,
        error_kind="http_status",
        error="500",
        http_status=500,
        attempts=1,
        idempotency_key=f"msg_{hook_id}_{event_id}",
        event_id=event_id,
        event_type="order.shipped",
        failed_at=1000.0,
        replayed_from="",
        tenant=tenant,
        hook_tenant=hook_tenant or HOOK_TENANTS.get(hook_id),
    )


def attempt(hook_id: str, event_id: str, tenant: str, hook_tenant: str | None = None) -> AttemptRow:
    return AttemptRow(
        event_id=event_id,
        hook_id=hook_id,
        attempt=1,
        idempotency_key=f"msg_{hook_id}_{event_id}",
        http_status=500,
        latency_ms=2.0,
        error_kind="http_status",
        error="HTTP 500: unexpected status",
        response_excerpt=f"{hook_id} is down",
        at=999.0,
        where=f"attempts/0/{hook_id}-{event_id}",
        tenant=tenant,
        hook_tenant=hook_tenant or HOOK_TENANTS.get(hook_id),
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AdminService]:
    admin = Admin(
        tokens=(
            AdminToken(Secret(ADMIN_TOKEN), "admin"),
            AdminToken(Secret(ACME_TOKEN), "admin", "acme"),
            AdminToken(Secret(ACME_VIEWER_TOKEN), "viewer", "acme"),
        ),
        data_dir=str(tmp_path),
    )
    index = Index(tmp_path / "index.sqlite3")
    service = AdminService(Settings(admin=admin), Tokens.from_settings(admin), index, Sessions(60))
    MemoryStore.installed(
        service,
        [
            definition("acme-sms", "acme"),
            definition("globex-sms", "globex"),
            definition("everyone"),
        ],
    )
    # every hook paused: a pause leaves it so and a resume lifts it, both answering 200
    decisions = MemoryDecisions("acme-sms", "globex-sms", "everyone")
    service.pauses = decisions
    service.health = decisions  # type: ignore[assignment]
    index.add(
        [
            outcome("acme-sms", "e-acme", "acme"),
            outcome("everyone", "e-acme", "acme"),
            outcome("globex-sms", "e-globex", "globex"),
        ],
        [
            letter("acme-sms", "e-acme", "acme"),
            letter("everyone", "e-acme", "acme"),
            letter("globex-sms", "e-globex", "globex"),
        ],
        {},
        [
            attempt("acme-sms", "e-acme", "acme"),
            attempt("everyone", "e-acme", "acme"),
            attempt("globex-sms", "e-globex", "globex"),
        ],
    )
    for tenant in ("globex", None):  # replays another token started: never run here
        job = ReplayJob(f"job-{tenant}", ReplayOptions(Selection(tenant=tenant)), 1.0, tenant)
        service.replays._jobs[job.id] = job
    yield service
    index.close()


@pytest.fixture
def client(service: AdminService) -> Iterator[TestClient]:
    with TestClient(create_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


def addressing(hook_id: str) -> dict[tuple[str, str], tuple[str, str, Any]]:
    """Per route naming a hook: a request that names `hook_id`."""
    event = cloud_event("order.shipped", {"n": 1})
    return {
        ("GET", "/api/hooks/{hook_id}"): ("GET", f"/api/hooks/{hook_id}", None),
        ("PUT", "/api/hooks/{hook_id}"): ("PUT", f"/api/hooks/{hook_id}", definition(hook_id)),
        ("DELETE", "/api/hooks/{hook_id}"): ("DELETE", f"/api/hooks/{hook_id}", None),
        ("POST", "/api/hooks/{hook_id}/test"): (
            "POST",
            f"/api/hooks/{hook_id}/test",
            {"event": event},
        ),
        ("GET", "/api/hooks/{hook_id}/outcomes"): ("GET", f"/api/hooks/{hook_id}/outcomes", None),
        ("GET", "/api/hooks/{hook_id}/attempts"): ("GET", f"/api/hooks/{hook_id}/attempts", None),
        ("GET", "/api/dead-letters/list"): ("GET", f"/api/dead-letters/list?hook={hook_id}", None),
        ("POST", "/api/replays"): ("POST", "/api/replays", {"hook": hook_id, "dry_run": True}),
        ("GET", "/api/hooks/{hook_id}/health"): ("GET", f"/api/hooks/{hook_id}/health", None),
        ("POST", "/api/hooks/{hook_id}/pause"): ("POST", f"/api/hooks/{hook_id}/pause", None),
        ("POST", "/api/hooks/{hook_id}/resume"): (
            "POST",
            f"/api/hooks/{hook_id}/resume",
            {"replay": False},
        ),
    }


NAMING_A_HOOK = sorted(addressing("x"))
# routes that name no hook, each with its test below
LISTING = {
    ("GET", "/api/hooks"): "test_a_tenant_lists_only_its_hooks",
    ("POST", "/api/hooks"): "test_a_hook_a_tenant_creates_gets_its_tenant_and_no_other",
    ("GET", "/api/events/{event_id}"): "test_an_event_look_up_shows_only_the_tenant_rows",
    ("GET", "/api/dead-letters"): "test_dead_letter_counts_hold_only_the_tenant_letters",
    ("GET", "/api/replays"): "test_a_tenant_sees_only_the_replays_it_started",
    ("GET", "/api/replays/{replay_id}"): "test_a_tenant_sees_only_the_replays_it_started",
}


def test_every_route_is_checked_with_a_tenant_token() -> None:
    assert sorted({*NAMING_A_HOOK, *LISTING}) == ROUTES
    assert set(LISTING.values()) <= set(globals())


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("route", NAMING_A_HOOK, ids=" ".join)
def test_a_hook_the_tenant_does_not_see_answers_404_on_every_route(
    client: TestClient, service: AdminService, route: tuple[str, str], hidden: str
) -> None:
    method, path, body = addressing(hidden)[route]
    answer = client.request(method, path, json=body, headers=ACME)
    assert answer.status_code == 404, (route, answer.text)
    assert answer.json() == {"error": f"no hook {hidden!r}"}
    assert service.hooks().get(hidden) is not None  # nothing changed
    assert service.hooks().get(hidden).tenant == ("globex" if hidden == "globex-sms" else None)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "route", [r for r in NAMING_A_HOOK if r != ("POST", "/api/replays")], ids=" ".join
)
def test_the_same_requests_pass_for_a_token_of_every_tenant(
    client: TestClient, route: tuple[str, str]
) -> None:
    method, path, body = addressing("globex-sms")[route]
    if method == "PUT":
        body = definition("globex-sms", "globex")
    answer = client.request(method, path, json=body, headers=ADMIN)
    assert answer.status_code == 200, (route, answer.text)


# starting a replay of its own hook needs Kafka: tests/integration/test_admin_tenants.py
@pytest.mark.parametrize(
    "route", [r for r in NAMING_A_HOOK if r != ("POST", "/api/replays")], ids=" ".join
)
def test_the_tenant_reaches_its_own_hook_on_every_route(
    client: TestClient, route: tuple[str, str]
) -> None:
    method, path, body = addressing("acme-sms")[route]
    answer = client.request(method, path, json=body, headers=ACME)
    assert answer.status_code == 200, (route, answer.text)


def test_a_tenant_lists_only_its_hooks(client: TestClient) -> None:
    for headers in (ACME, ACME_VIEWER):
        listed = client.get("/api/hooks", headers=headers).json()["hooks"]
        assert [(h["id"], h["tenant"]) for h in listed] == [("acme-sms", "acme")]
    assert len(client.get("/api/hooks", headers=ADMIN).json()["hooks"]) == 3


def test_a_hook_a_tenant_creates_gets_its_tenant_and_no_other(
    client: TestClient, service: AdminService
) -> None:
    created = client.post("/api/hooks", json=definition("acme-mail"), headers=ACME)
    assert created.status_code == 201, created.text
    assert created.json()["tenant"] == "acme"
    assert service.hooks().get("acme-mail").tenant == "acme"  # type: ignore[union-attr]
    named = client.post("/api/hooks", json=definition("acme-fax", "acme"), headers=ACME)
    assert named.status_code == 201

    other = client.post("/api/hooks", json=definition("acme-tel", "globex"), headers=ACME)
    assert other.status_code == 422
    assert other.json()["problems"] == [
        {
            "path": "tenant",
            "message": "must be 'acme' (the token's tenant) or left out",
            "line": None,
        }
    ]
    assert service.hooks().get("acme-tel") is None
    taken = client.post("/api/hooks", json=definition("globex-sms"), headers=ACME)
    assert taken.status_code == 409
    assert taken.json() == {"error": "the id 'globex-sms' is taken: choose another"}
    assert client.post("/api/hooks", json=definition("x"), headers=ACME_VIEWER).status_code == 403


def test_an_edit_keeps_the_tenant_and_cannot_move_the_hook(
    client: TestClient, service: AdminService
) -> None:
    moved = client.put("/api/hooks/acme-sms", json=definition("acme-sms", "globex"), headers=ACME)
    assert moved.status_code == 422
    assert moved.json()["problems"][0]["path"] == "tenant"
    left_out = client.put("/api/hooks/acme-sms", json=definition("acme-sms"), headers=ACME)
    assert left_out.status_code == 200
    assert service.hooks().get("acme-sms").tenant == "acme"  # type: ignore[union-attr]
    fresh = client.put("/api/hooks/acme-new", json=definition("acme-new"), headers=ACME)
    assert fresh.status_code == 201
    assert fresh.json()["tenant"] == "acme"


GLOBEX_KEY = "globex-erp-key-0123456789"
ACME_EU_KEY = "acme-eu-erp-key-0123456789"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET_GLOBEX__ERP", GLOBEX_KEY)
    monkeypatch.setenv("DISPATCHER_SECRET_ACME__ERP", "acme-erp-key-0123456789")
    monkeypatch.setenv("DISPATCHER_SECRET_ACME_EU__ERP", ACME_EU_KEY)  # tenant acme-eu's


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"allow_loopback": True}, "allow_loopback"),
        ({"allow_private_networks": True}, "allow_private_networks"),
        ({"headers": {"X-Echo": "${env:DISPATCHER_SECRET_GLOBEX__ERP}"}}, "headers.X-Echo"),
        ({"url": "https://acme.example/?k=${env:DISPATCHER_SECRET_GLOBEX__ERP}"}, "url"),
        ({"auth": {"type": "bearer", "token": "${file:globex/erp}"}}, "auth.token"),
    ],
)
def test_a_tenant_token_may_not_write_a_hook_reaching_beyond_its_tenant(
    client: TestClient, service: AdminService, keys: None, extra: dict[str, Any], path: str
) -> None:
    created = client.post("/api/hooks", json=definition("acme-probe", **extra), headers=ACME)
    assert created.status_code == 422, created.text
    assert [p["path"] for p in created.json()["problems"]] == [path]
    assert "GLOBEX" not in created.text
    assert service.hooks().get("acme-probe") is None
    edited = client.put("/api/hooks/acme-sms", json=definition("acme-sms", **extra), headers=ACME)
    assert edited.status_code == 422


def test_a_tenant_token_names_secrets_under_its_own_prefix(
    client: TestClient, service: AdminService, keys: None
) -> None:
    mine = definition("acme-erp", headers={"X-Key": "${env:DISPATCHER_SECRET_ACME__ERP}"})
    assert client.post("/api/hooks", json=mine, headers=ACME).status_code == 201
    unscoped = definition(
        "ops", allow_loopback=True, headers={"X-Key": "${env:DISPATCHER_SECRET_GLOBEX__ERP}"}
    )
    assert client.post("/api/hooks", json=unscoped, headers=ADMIN).status_code == 201


def test_a_tenant_token_may_not_name_the_secrets_of_a_tenant_its_name_begins(
    client: TestClient, service: AdminService, keys: None
) -> None:
    """acme's prefix (DISPATCHER_SECRET_ACME__) does not begin acme-eu's
    (DISPATCHER_SECRET_ACME_EU__): acme's token neither writes nor tries a hook naming it."""
    echo = {"headers": {"X-Echo": "${env:DISPATCHER_SECRET_ACME_EU__ERP}"}}
    created = client.post("/api/hooks", json=definition("acme-probe", **echo), headers=ACME)
    assert created.status_code == 422, created.text
    assert [p["path"] for p in created.json()["problems"]] == ["headers.X-Echo"]
    assert "ACME_EU" not in created.text
    assert service.hooks().get("acme-probe") is None
    store = service.store
    assert isinstance(store, MemoryStore)
    store.stored["acme-sms"] = definition("acme-sms", "acme", **echo)
    store.apply([])  # the operator's hook, written before
    event = cloud_event("order.shipped", {"n": 1})
    tried = client.post("/api/hooks/acme-sms/test", json={"event": event}, headers=ACME)
    assert tried.status_code == 422
    assert "headers.X-Echo: a tenant's token may name only secrets" in tried.json()["error"]
    assert ACME_EU_KEY not in tried.text


def test_a_tenant_token_may_not_try_a_stored_hook_reaching_beyond_its_tenant(
    client: TestClient, service: AdminService, keys: None
) -> None:
    store = service.store
    assert isinstance(store, MemoryStore)
    store.stored["acme-sms"] = definition("acme-sms", "acme", allow_loopback=True)
    store.apply([])  # the operator's setting, written before
    event = cloud_event("order.shipped", {"n": 1})
    tried = client.post("/api/hooks/acme-sms/test", json={"event": event}, headers=ACME)
    assert tried.status_code == 422
    assert "allow_loopback: only a token of every tenant may set this" in tried.json()["error"]
    assert (
        client.post("/api/hooks/acme-sms/test", json={"event": event}, headers=ADMIN).status_code
        == 200
    )
    csrf = signed_in(client, ACME_TOKEN)
    page = client.post(
        "/hooks/acme-sms/try", data={"csrf": csrf, "type": "order.shipped", "data": "{}"}
    )
    assert page.status_code == 422
    assert "only a token of every tenant may set this" in page.text


def test_the_editor_refuses_a_tenant_hook_reaching_beyond_its_tenant(
    client: TestClient, service: AdminService
) -> None:
    csrf = signed_in(client, ACME_TOKEN)
    yaml = (
        "id: acme-mail\nevents: [order.shipped]\nurl: https://mail.example/\nallow_loopback: true\n"
    )
    saved = client.post("/hooks/save", data={"yaml": yaml, "csrf": csrf})
    assert saved.status_code == 422
    assert "only a token of every tenant may set this" in saved.text
    assert service.hooks().get("acme-mail") is None


def test_outcomes_and_dead_letters_of_its_hook_hold_only_the_tenant_rows(
    client: TestClient,
) -> None:
    outcomes = client.get("/api/hooks/acme-sms/outcomes", headers=ACME_VIEWER).json()
    assert [(o["event_id"], o["tenant"]) for o in outcomes["outcomes"]] == [("e-acme", "acme")]
    letters = client.get("/api/dead-letters/list", headers=ACME_VIEWER).json()
    assert [(d["hook_id"], d["tenant"]) for d in letters] == [("acme-sms", "acme")]
    attempts = client.get("/api/hooks/acme-sms/attempts", headers=ACME_VIEWER).json()
    assert [(a["event_id"], a["tenant"]) for a in attempts["attempts"]] == [("e-acme", "acme")]
    assert attempts["status_classes"] == {"5xx": 1}
    assert len(client.get("/api/dead-letters/list", headers=ADMIN).json()) == 3


def test_an_event_look_up_shows_only_the_tenant_rows(client: TestClient) -> None:
    looked_up = client.get("/api/events/e-acme", headers=ACME_VIEWER).json()
    assert [o["hook_id"] for o in looked_up["outcomes"]] == ["acme-sms"]
    assert [d["hook_id"] for d in looked_up["dead_letters"]] == ["acme-sms"]
    assert [a["response_excerpt"] for a in looked_up["attempts"]] == ["acme-sms is down"]
    everything = client.get("/api/events/e-acme", headers=ADMIN).json()["attempts"]
    assert [a["hook_id"] for a in everything] == ["acme-sms", "everyone"]
    other = client.get("/api/events/e-globex", headers=ACME_VIEWER)
    assert other.status_code == 404
    assert other.json() == {"error": "no outcome of event 'e-globex' in the index"}
    assert client.get("/api/events/e-globex", headers=ADMIN).status_code == 200


def test_dead_letter_counts_hold_only_the_tenant_letters(client: TestClient) -> None:
    assert client.get("/api/dead-letters", headers=ACME_VIEWER).json() == {
        "total": 1,
        "by_hook": {"acme-sms": {"http_status": 1}},
    }
    assert client.get("/api/dead-letters", headers=ADMIN).json()["total"] == 3


def test_a_tenant_sees_only_the_replays_it_started(client: TestClient) -> None:
    assert client.get("/api/replays", headers=ACME_VIEWER).json() == {"replays": []}
    assert len(client.get("/api/replays", headers=ADMIN).json()["replays"]) == 2
    for job_id in ("job-globex", "job-None"):
        answer = client.get(f"/api/replays/{job_id}", headers=ACME_VIEWER)
        assert answer.status_code == 404
        assert answer.json() == {"error": f"no replay {job_id!r}"}
        assert client.get(f"/api/replays/{job_id}", headers=ADMIN).status_code == 200


def test_a_tenant_token_holds_only_its_share_of_the_running_replays(
    client: TestClient, service: AdminService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acme's replays at a letter a year, as many as one tenant may run: acme's next is a 429,
    while the operator's still starts."""
    monkeypatch.setattr(jobs_module, "run_replay", lambda *_a, **_k: (Plan(), Summary()))
    for n in range(TENANT_RUNNING_AT_MOST):
        slow = ReplayOptions(Selection(hook="acme-sms", tenant="acme"), rate=1e-9)
        service.replays._jobs[f"acme-{n}"] = ReplayJob(f"acme-{n}", slow, 1.0, "acme")
    more = client.post("/api/replays", json={"hook": "acme-sms", "dry_run": True}, headers=ACME)
    assert more.status_code == 429, more.text
    assert "as many as one tenant runs at once" in more.json()["error"]
    operator = client.post("/api/replays", json={"dry_run": True}, headers=ADMIN)
    assert operator.status_code == 202, operator.text


def test_deleting_its_hook_tells_a_tenant_nothing_of_a_hidden_one_of_the_same_id(
    client: TestClient, service: AdminService
) -> None:
    """acme's stored `shared` replaces the hooks file's (the operator's, of every tenant): once
    acme deletes it, the file's is in force again, a hook acme's token does not see."""
    operators = definition("shared")
    MemoryStore.installed(service, [definition("shared", "acme")], file=[operators])
    deleted = client.delete("/api/hooks/shared", headers=ACME)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": "shared", "in_force": None}
    assert client.get("/api/hooks/shared", headers=ACME).status_code == 404
    assert service.hooks().get("shared").tenant is None  # type: ignore[union-attr]
    MemoryStore.installed(service, [definition("shared", "acme")], file=[operators])
    told = client.delete("/api/hooks/shared", headers=ADMIN)
    assert told.json() == {"deleted": "shared", "in_force": "hooks file"}


OPERATORS_ANSWER = "the operator's endpoint: unknown audit stream"


def written(
    hook_id: str, hook_tenant: str | None, event_id: str, status: int, offset: int
) -> dict[str, Record]:
    """By topic, the records the workers write when acme's event `event_id` is answered
    `status` at `hook_id`, then a hook of `hook_tenant`: a result, an attempt, and for a
    failure a dead letter."""
    event = {**cloud_event("audit.logged", {"n": 1}, event_id), "tenant": "acme"}
    source = Record("events", 0, offset, None, json.dumps(event).encode(), ())
    failed = status >= 400
    end = Outcome(event_id, "audit.logged", hook_id, "dead_lettered" if failed else "delivered",
                  1, f"msg_{event_id}", Source("events", 0, offset), 999.0, 1000.0 + offset,
                  status, 2.0, "http_status" if failed else None, f"HTTP {status}" if failed else None,
                  tenant="acme", hook_tenant=hook_tenant)  # fmt: skip
    excerpt = OPERATORS_ANSWER if hook_tenant is None else "ok"
    tried = AttemptRecord(event_id, hook_id, 1, f"msg_{event_id}", status, 2.0, end.error_kind,
                          end.error, excerpt, 999.0 + offset, "acme", end.source, hook_tenant)  # fmt: skip
    records = {
        "results": Record(
            "results", 0, offset, None, JsonResultSerializer().serialize_outcome(end), ()
        ),
        "attempts": Record("attempts", 0, offset, None, tried.to_json(), ()),
    }
    if failed:
        headers = dead_letter_headers(end, source, failed_at=1000.0 + offset)
        records["dlq"] = Record("dlq", 0, offset, None, source.value, headers)
    return records


def indexed(index: Index, *written: dict[str, Record]) -> None:
    """What the workers `written` into the index, as its follower reads it."""
    results = [ResultRow.from_record(records["results"]) for records in written]
    attempts = [AttemptRow.from_record(records["attempts"]) for records in written]
    letters = [LetterRow.from_record(records["dlq"]) for records in written if "dlq" in records]
    index.add(
        [r for r in results if r is not None],
        letters,
        {},
        [a for a in attempts if a is not None],
    )


@pytest.mark.parametrize("change", ["deleted, then acme's anew", "given tenant acme"])
def test_what_a_hook_of_every_tenant_wrote_stays_hidden_once_the_hook_is_acme(
    client: TestClient, service: AdminService, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The operator's `audit` (of every tenant) dead-lettered acme's event, its endpoint's
    answer in the attempt; then `audit` became acme's. acme's token sees, and replays, only
    what `audit` wrote as acme's hook, never the operator's attempt, outcome or letter."""
    assert client.post("/api/hooks", json=definition("audit"), headers=ADMIN).status_code == 201
    operators = written("audit", None, "e-operator", 400, 1)
    if change == "given tenant acme":
        moved = client.put("/api/hooks/audit", json=definition("audit", "acme"), headers=ADMIN)
        assert moved.status_code == 200, moved.text
    else:
        assert client.delete("/api/hooks/audit", headers=ADMIN).status_code == 200
        created = client.post("/api/hooks", json=definition("audit"), headers=ACME)
        assert created.status_code == 201, created.text
    assert service.hooks().get("audit").tenant == "acme"  # type: ignore[union-attr]
    acmes = written("audit", "acme", "e-acme-audit", 200, 2)
    acmes_failure = written("audit", "acme", "e-acme-failed", 500, 3)
    indexed(service.index, operators, acmes, acmes_failure)

    attempts = client.get("/api/hooks/audit/attempts", headers=ACME_VIEWER).json()
    assert [a["event_id"] for a in attempts["attempts"]] == ["e-acme-failed", "e-acme-audit"]
    assert attempts["status_classes"] == {"2xx": 1, "5xx": 1}
    outcomes = client.get("/api/hooks/audit/outcomes", headers=ACME_VIEWER).json()["outcomes"]
    assert [(o["event_id"], o["hook_tenant"]) for o in outcomes] == [
        ("e-acme-failed", "acme"),
        ("e-acme-audit", "acme"),
    ]
    hidden = client.get("/api/events/e-operator", headers=ACME_VIEWER)
    assert hidden.status_code == 404
    letters = client.get("/api/dead-letters/list?hook=audit", headers=ACME_VIEWER).json()
    assert [d["event_id"] for d in letters] == ["e-acme-failed"]
    counted = client.get("/api/dead-letters", headers=ACME_VIEWER).json()
    assert counted["by_hook"]["audit"] == {"http_status": 1}
    answers = [
        client.get(path, headers=ACME_VIEWER).text
        for path in ("/api/hooks/audit/attempts", "/api/events/e-acme-audit", "/api/dead-letters")
    ]
    assert not [a for a in answers if "unknown audit stream" in a or "e-operator" in a]

    # acme's replay of `audit` takes acme's letter, never the operator's
    monkeypatch.setattr(jobs_module, "run_replay", lambda *_a, **_k: (Plan(), Summary(0)))
    started = client.post("/api/replays", json={"hook": "audit", "dry_run": True}, headers=ACME)
    assert started.status_code == 202, started.text
    selection = service.replays.get(started.json()["id"]).options.selection  # type: ignore[union-attr]
    assert not selection.admits(DeadLetter.from_record(operators["dlq"]))
    assert selection.admits(DeadLetter.from_record(acmes_failure["dlq"]))

    # the operator sees every record, the operator's own too
    everything = client.get("/api/events/e-operator", headers=ADMIN).json()
    assert [a["response_excerpt"] for a in everything["attempts"]] == [OPERATORS_ANSWER]
    assert [d["hook_tenant"] for d in everything["dead_letters"]] == [None]
    assert len(client.get("/api/hooks/audit/attempts", headers=ADMIN).json()["attempts"]) == 3


def test_writes_with_a_tenant_viewer_token_are_refused(client: TestClient) -> None:
    for method, path, body in addressing("acme-sms").values():
        if method != "GET":
            answer = client.request(method, path, json=body, headers=ACME_VIEWER)
            assert answer.status_code == 403, path


def test_no_answer_to_a_tenant_names_a_hidden_hook(client: TestClient) -> None:
    answers = [
        client.get(path, headers=ACME_VIEWER).text
        for path in (
            "/api/hooks",
            "/api/dead-letters",
            "/api/dead-letters/list",
            "/api/events/e-acme",
            "/api/hooks/acme-sms/outcomes",
            "/api/replays",
        )
    ]
    for hidden in HIDDEN:
        assert not [a for a in answers if re.search(rf"\b{hidden}\b", a)], hidden


# -- the console -------------------------------------------------------------------------------


def signed_in(client: TestClient, token: str) -> str:
    """Sign in with `token`; the session's CSRF token."""
    answer = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert found is not None
    return found.group(1)


def test_a_tenant_session_sees_only_its_hooks_letters_and_events(client: TestClient) -> None:
    signed_in(client, ACME_TOKEN)
    pages = {
        path: client.get(path)
        for path in ("/", "/dead-letters", "/dead-letters?hook=acme-sms", "/events?id=e-acme")
    }
    assert all(page.status_code == 200 for page in pages.values())
    assert "tenant acme" in pages["/"].text
    for page in pages.values():
        assert "acme-sms" in page.text
        assert not re.search(r"\bglobex-sms\b|\beveryone\b", page.text)
    assert "Nothing known about e-globex" in client.get("/events?id=e-globex").text


@pytest.mark.parametrize("hidden", HIDDEN)
def test_a_tenant_session_gets_404_for_a_hidden_hook_on_every_page(
    client: TestClient, service: AdminService, hidden: str
) -> None:
    csrf = signed_in(client, ACME_TOKEN)
    for path in (
        f"/hooks/{hidden}/edit",
        f"/hooks/{hidden}/duplicate",
        f"/hooks/{hidden}/try",
        f"/hooks/{hidden}/outcomes",
        f"/hooks/{hidden}/delete",
        f"/dead-letters?hook={hidden}",
        "/replays/job-globex",
    ):
        assert client.get(path, headers={"accept": "text/html"}).status_code == 404, path
    for path, form in (
        (f"/hooks/{hidden}/try", {"type": "order.shipped", "data": "{}"}),
        (f"/hooks/{hidden}/toggle", {}),
        (f"/hooks/{hidden}/delete", {}),
        ("/hooks/check", {"yaml": f"id: {hidden}\n", "original": hidden, "base": hidden}),
        ("/hooks/save", {"yaml": "id: mine\n", "base": hidden}),  # its secrets, into mine
        ("/replays", {"hook": hidden, "dry_run": "on"}),
        ("/replays", {"confirm": "job-globex"}),  # another tenant's replay, confirmed
    ):
        answer = client.post(path, data={**form, "csrf": csrf})
        assert answer.status_code == 404, (path, answer.text)
    assert service.hooks().get(hidden) is not None


def test_the_editor_saves_a_tenant_hook_with_its_tenant_only(
    client: TestClient, service: AdminService
) -> None:
    csrf = signed_in(client, ACME_TOKEN)
    assert "tenant: acme" in client.get("/hooks/new").text  # the new hook's skeleton
    yaml = "id: acme-mail\nevents: [order.shipped]\nurl: https://mail.example/\n"
    saved = client.post("/hooks/save", data={"yaml": yaml, "csrf": csrf}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert service.hooks().get("acme-mail").tenant == "acme"  # type: ignore[union-attr]
    moved = client.post(
        "/hooks/save",
        data={"yaml": yaml + "tenant: globex\n", "original": "acme-mail", "csrf": csrf},
    )
    assert moved.status_code == 422
    assert "must be &#39;acme&#39; (the token&#39;s tenant) or left out" in moved.text
    assert service.hooks().get("acme-mail").tenant == "acme"  # type: ignore[union-attr]
