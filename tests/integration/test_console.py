"""The console in a real browser (Playwright driving Debian's Chromium) against `dispatcher admin`,
a worker and the real broker: sign in; create a hook with an error and see it at its line; fix
and save; try it and see the verdict; find a delivered event by its id; make the hook fail, see
the dead letter, dry-run and replay it, see it delivered. Every step leaves a screenshot in
test-results/console/; with DUGAA_SCREENSHOTS_TO_DOCS=1 (`make screenshots`) the README's are
copied to docs/console/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_support import (
    ACME_TOKEN,
    ADMIN_TOKEN,
    TOKEN_ENV,
    VIEWER_TOKEN,
    AdminDeployment,
    RunningAdmin,
    running_admin,
    two_tenants,
)
from console_support import shot, sign_in
from dispatch_support import cloud_event, hook, wait_ready
from kafka_support import wait_for
from playwright.sync_api import Page, expect

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.engine.worker import Worker

ORDERS_TOKEN = "orders-bearer-4c1d-secret"


def definition(receiver_url: str, *, broken: bool) -> str:
    return "\n".join(
        [
            "id: orders",
            "description: Order payments to the ERP",
            "events: [order.paid]",
            f"url: {receiver_url}/orders",
            "method: POST",
            f"format: {'yaml' if broken else 'json'}",
            'auth: {type: bearer, token: "${env:DUGAA_TEST_ORDERS_TOKEN}"}',
            "fields:",
            "  - {name: order, from: data.order_id, required: true}",
            "  - {name: total, from: data.total}",
            "retry: {max_attempts: 1}",
            "",
        ]
    )


@pytest.fixture
def system(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Receiver, AdminDeployment, Worker, RunningAdmin]]:
    for name, value in {**TOKEN_ENV, "DUGAA_TEST_ORDERS_TOKEN": ORDERS_TOKEN}.items():
        monkeypatch.setenv(name, value)
    with Receiver() as receiver:
        deployment = AdminDeployment(
            kafka_bootstrap,
            tmp_path,
            [hook("audit", f"{receiver.url}/audit", ["order.*"], format="json")],
        )
        with deployment.worker() as worker, running_admin(deployment.settings) as admin:
            wait_ready(worker)
            yield receiver, deployment, worker, admin


def test_an_admin_creates_tries_watches_and_replays_a_hook_in_the_browser(
    page: Page, system: tuple[Receiver, AdminDeployment, Worker, RunningAdmin]
) -> None:
    receiver, deployment, worker, admin = system
    page.set_viewport_size({"width": 1360, "height": 860})

    # sign in
    page.goto(admin.url + "/")
    expect(page).to_have_url(admin.url + "/login?next=/")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hooks")).to_be_visible()
    expect(page.locator("#hook-audit")).to_contain_text("hooks file")
    # a hooks-file hook is deleted by editing that file, not here: no Delete that would fail
    expect(page.locator("#hook-audit").get_by_role("link", name="Delete")).to_have_count(0)

    # a new hook with an error: the problem shows beside its line
    page.get_by_role("link", name="New hook").click()
    page.get_by_label("Definition (YAML").fill(definition(receiver.url, broken=True))
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    expect(page.locator("#line-6")).to_have_class("bad")
    expect(page.locator("#line-6")).to_contain_text('"yaml" is not allowed')
    expect(page.locator("tr.bad")).to_have_count(1)
    shot(page, "02-editor-error")

    # fixed: the review shows the diff; saving puts it in force in the worker
    page.get_by_label("Definition (YAML").fill(definition(receiver.url, broken=False))
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    expect(page.get_by_role("heading", name="Review orders")).to_be_visible()
    expect(page.locator("pre.diff")).to_contain_text("+format: json")
    expect(page.locator("pre.diff")).to_contain_text("token: '***'")
    expect(page.locator("pre.diff")).not_to_contain_text(ORDERS_TOKEN)
    shot(page, "03-review")
    page.get_by_role("button", name="Save to the hook store").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    wait_for(lambda: worker.hooks.get("orders") is not None, 10, message="orders in force")

    # try it: the exact request, masked, and the verdict
    page.goto(admin.url + "/hooks/orders/try")
    page.get_by_label("Sample data").fill('{"order_id": "A-1", "total": 12.5}')
    page.get_by_label("Send it to orders").check()
    page.get_by_role("button", name="Render the request").click()
    expect(page.get_by_role("heading", name="Verdict: delivered")).to_be_visible()
    expect(page.locator("pre.request")).to_contain_text('{"order":"A-1","total":12.5}')
    expect(page.locator("pre.request")).to_contain_text("authorization: Bearer ***")
    assert ORDERS_TOKEN not in page.content()
    (tried,) = receiver.received("/orders")
    assert tried.headers["authorization"] == f"Bearer {ORDERS_TOKEN}"
    shot(page, "04-try")

    # shown masked, edited and saved back: the stored secret stays (the replay below proves it)
    page.goto(admin.url + "/hooks/orders/edit")
    shown = page.get_by_label("Definition (YAML").input_value()
    assert "token: '***'" in shown
    assert "DUGAA_TEST_ORDERS_TOKEN" not in shown
    page.get_by_label("Definition (YAML").fill(shown.replace("to the ERP", "to the ERP, v2"))
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    expect(page.locator("pre.diff .add")).to_have_count(2)  # the +++ line and the description
    expect(page.locator("pre.diff")).to_contain_text("+description: Order payments to the ERP, v2")
    page.get_by_role("button", name="Save to the hook store").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    wait_for(
        lambda: getattr(worker.hooks.get("orders"), "description", "").endswith("v2"),
        10,
        message="the edit in force",
    )

    # an event delivered, found by its id
    paid = cloud_event("order.paid", {"order_id": "A-2", "total": 40})
    deployment.produce_events([paid])
    wait_for(lambda: len(admin.service.index.event(paid["id"])[0]) == 2, 60, message="indexed")
    page.goto(admin.url + "/events")
    page.get_by_label("Event id").fill(paid["id"])
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("tr.outcome-delivered")).to_have_count(2)
    shot(page, "05-event")

    # the third party refuses: a dead letter, a dry run, then the replay
    receiver.routes["/orders"] = Behaviour(status=422, body=b'{"error":"closed"}')
    failed = cloud_event("order.paid", {"order_id": "A-3", "total": 7})
    deployment.produce_events([failed])
    wait_for(lambda: admin.service.index.event(failed["id"])[1], 60, message="the dead letter")
    page.get_by_role("link", name="Dead letters").click()
    group = page.locator("#group-orders-http_status")
    expect(group).to_contain_text("1")
    shot(page, "06-dead-letters")
    group.get_by_role("button", name="Dry run a replay").click()
    expect(page.locator("#replay-status")).to_contain_text("done", timeout=30_000)
    expect(page.locator("table")).to_contain_text("send")
    shot(page, "07-dry-run")
    assert len(receiver.received("/orders")) == 3  # the dry run sent nothing

    receiver.routes["/orders"] = Behaviour()
    page.get_by_role("button", name="Replay 1 dead letter").click()
    expect(page.locator("#replay-status")).to_contain_text("done", timeout=30_000)
    expect(page.locator("#replay-status")).to_contain_text("delivered 1")
    shot(page, "08-replayed")
    replayed = receiver.received("/orders")[-1]
    assert replayed.headers["webhook-id"] == receiver.received("/orders")[-2].headers["webhook-id"]
    assert replayed.headers["authorization"] == f"Bearer {ORDERS_TOKEN}"

    # the event now shows delivered too
    wait_for(
        lambda: any(
            r["outcome"] == "delivered" for r in admin.service.index.event(failed["id"])[0]
        ),
        60,
        message="the replayed delivery indexed",
    )
    page.goto(admin.url + f"/events?id={failed['id']}")
    expect(page.locator("tr.outcome-delivered")).to_have_count(2)
    expect(page.locator("tr.outcome-dead_lettered")).to_have_count(1)
    shot(page, "09-event-replayed")
    page.goto(admin.url + "/hooks/orders/outcomes?status=delivered")
    expect(page.locator("tr.outcome-delivered")).to_have_count(2)
    shot(page, "10-outcomes")
    page.goto(admin.url + "/")
    expect(page.locator("#hook-orders")).to_contain_text("enabled")
    shot(page, "01-hooks")

    # disable, then delete with a confirmation: both reach the worker
    page.locator("#hook-orders").get_by_role("button", name="Disable").click()
    expect(page.locator("#hook-orders")).to_contain_text("disabled")
    wait_for(
        lambda: getattr(worker.hooks.get("orders"), "enabled", True) is False,
        10,
        message="the worker has the hook disabled",
    )
    page.locator("#hook-orders").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete orders").click()
    expect(page.locator("#hook-orders")).to_have_count(0)
    wait_for(lambda: worker.hooks.get("orders") is None, 10, message="deleted")


def test_an_admin_pauses_a_hook_and_resumes_it_with_a_replay_of_what_the_pause_held(
    page: Page, system: tuple[Receiver, AdminDeployment, Worker, RunningAdmin]
) -> None:
    receiver, deployment, worker, admin = system
    page.set_viewport_size({"width": 1360, "height": 700})
    sign_in(page, admin.url, ADMIN_TOKEN)
    row = page.locator("#hook-audit")
    expect(row.get_by_role("button", name="Resume")).to_have_count(0)

    # paused from the hooks page: shown so at once, held by the worker within its poll
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused by hand since")
    expect(row.get_by_role("button", name="Pause")).to_have_count(0)
    expect(row.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name="Resume and replay")).to_be_visible()
    shot(page, "16-paused")
    wait_for(lambda: worker.health and worker.health.held("audit"), 10, message="audit held")

    # a viewer sees the state, without the buttons
    viewer = page.context.browser.new_page()  # type: ignore[union-attr]
    try:
        viewer.set_viewport_size({"width": 1360, "height": 700})
        sign_in(viewer, admin.url, VIEWER_TOKEN)
        expect(viewer.locator("#hook-audit")).to_contain_text("paused by hand since")
        expect(viewer.locator("#hook-audit").get_by_role("button")).to_have_count(0)
    finally:
        viewer.close()

    # the worker holds the hook's next event: a `paused` dead letter, no request
    paid = cloud_event("order.paid", {"order_id": "P-1", "total": 5})
    deployment.produce_events([paid])
    (letter,) = wait_for(
        lambda: admin.service.index.event(paid["id"])[1], 60, message="the paused dead letter"
    )
    assert letter["error_kind"] == "paused"
    assert receiver.received("/audit") == []
    page.get_by_role("link", name="Dead letters").click()
    expect(page.locator("#group-audit-paused")).to_contain_text("1")
    shot(page, "17-paused-dead-letters")

    # resumed with a replay: the held event is delivered with its original webhook-id
    page.goto(admin.url + "/")
    row.get_by_role("button", name="Resume and replay").click()
    expect(page.locator("#replay-status")).to_contain_text("done", timeout=30_000)
    expect(page.locator("#replay-status")).to_contain_text("delivered 1")
    shot(page, "18-resumed-replayed")
    (delivered,) = receiver.received("/audit")
    assert delivered.headers["webhook-id"] == letter["idempotency_key"]
    assert worker.health is not None
    wait_for(lambda: not worker.health.held("audit"), 10, message="the pause lifted")  # type: ignore[union-attr]
    page.goto(admin.url + "/")
    expect(row.locator(".paused")).to_have_count(0)  # (its last error still names the pause)
    expect(row.get_by_role("button", name="Pause")).to_be_visible()


def test_the_event_page_shows_each_attempt_of_a_delivery_that_succeeded_on_the_third_try(
    page: Page, system: tuple[Receiver, AdminDeployment, Worker, RunningAdmin]
) -> None:
    receiver, deployment, _worker, admin = system
    answers = iter(
        [
            Behaviour(status=503, body=b'{"error":"busy","retry_in":"1s"}'),
            Behaviour(
                status=503, body=b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            ),
            Behaviour(status=200, body=b'{"id":"ERP-1234","status":"accepted"}'),
        ]
    )
    receiver.responder = lambda request: next(answers) if request.path == "/audit" else None
    paid = cloud_event("order.paid", {"order_id": "1234", "total": 99})
    deployment.produce_events([paid])
    index = admin.service.index
    wait_for(lambda: len(index.attempts_of_event(paid["id"])) == 3, 60, message="3 attempts")

    page.set_viewport_size({"width": 1360, "height": 700})
    page.goto(admin.url + f"/events?id={paid['id']}")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    attempts = page.locator("#attempts-audit tr.attempt")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0)).to_contain_text('{"error":"busy","retry_in":"1s"}')
    expect(attempts.nth(1)).to_contain_text("<h1>503 Service Unavailable</h1>")  # as text
    expect(attempts.nth(2)).to_contain_text("ERP-1234")
    expect(page.locator("#attempts-audit tr.attempt-failed")).to_have_count(2)
    expect(page.locator("tr.outcome-delivered")).to_have_count(1)
    shot(page, "15-event-attempts")


def test_a_tenant_signs_in_and_sees_only_its_hooks_dead_letters_and_events(
    page: Page, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)
    refusing = {"/acme": Behaviour(status=422), "/globex": Behaviour(status=422)}
    with Receiver(refusing) as receiver:
        deployment = two_tenants(kafka_bootstrap, tmp_path, receiver.url)
        acme = {**cloud_event("order.shipped", {"n": 1}), "tenant": "acme"}
        globex = {**cloud_event("order.shipped", {"n": 2}), "tenant": "globex"}
        deployment.produce_events([acme, globex])
        with deployment.worker() as worker, running_admin(deployment.settings) as admin:
            wait_ready(worker)
            for event in (acme, globex):
                wait_for(
                    lambda e=event: (
                        len(admin.service.index.event(e["id"])[0]) == 2  # type: ignore[misc]
                        and admin.service.index.event(e["id"])[1]
                    ),
                    60,
                    message="both outcomes and the dead letter indexed",
                )
            page.set_viewport_size({"width": 1360, "height": 700})
            page.goto(admin.url + "/")
            page.get_by_label("Access token").fill(ACME_TOKEN)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Hooks")).to_be_visible()
            expect(page.locator("header")).to_contain_text("tenant acme")
            expect(page.locator("caption")).to_contain_text("Every hook of tenant acme")
            expect(page.locator("#hook-acme-sms")).to_be_visible()
            expect(page.locator("#hook-globex-sms")).to_have_count(0)
            expect(page.locator("#hook-everyone")).to_have_count(0)
            shot(page, "11-tenant-hooks")

            page.get_by_role("link", name="Dead letters").click()
            expect(page.locator("#group-acme-sms-http_status")).to_contain_text("1")
            expect(page.locator("#group-globex-sms-http_status")).to_have_count(0)
            shot(page, "12-tenant-dead-letters")

            page.get_by_role("link", name="Event look-up").click()
            page.get_by_label("Event id").fill(acme["id"])
            page.get_by_role("button", name="Look up").click()
            expect(page.locator("tr.outcome-dead_lettered")).to_have_count(1)
            expect(page.locator("tr.outcome-delivered")).to_have_count(0)  # everyone's: hidden
            expect(page.locator("main")).to_contain_text("acme-sms")
            shot(page, "13-tenant-event")
            page.get_by_label("Event id").fill(globex["id"])
            page.get_by_role("button", name="Look up").click()
            expect(page.get_by_role("status")).to_contain_text("Nothing known")
            assert "globex-sms" not in page.content()

            answer = page.goto(admin.url + "/hooks/globex-sms/edit")
            assert answer is not None
            assert answer.status == 404
            expect(page.locator("main")).to_contain_text("no hook 'globex-sms'")
            shot(page, "14-tenant-other-hook")
