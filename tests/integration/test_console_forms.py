"""The console's forms in a real browser (Playwright driving Debian's Chromium) against
`dispatcher admin` and the real broker: a session that ends mid-form, each problem beside the
field or line it is about (however long the line), an error page that keeps the way around, and
an edit that keeps the hook's URL as written. Screenshots go to test-results/console/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_support import (
    ADMIN,
    ADMIN_TOKEN,
    TOKEN_ENV,
    AdminDeployment,
    RunningAdmin,
    running_admin,
)
from console_support import shot, sign_in
from dispatch_support import hook
from playwright.sync_api import Page, expect

LONG_DESCRIPTION = (
    "Order payments to the ERP of ACME GmbH; owned by the payments team (payments@acme.example),"
    " on call +49 30 1234567 in business hours, escalate to the ERP vendor's desk otherwise"
)


@pytest.fixture
def admin(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningAdmin]:
    """The admin service with a hook store and one hooks-file hook, `audit`; no worker."""
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)
    deployment = AdminDeployment(
        kafka_bootstrap, tmp_path, [hook("audit", "https://audit.example/in", ["order.*"])]
    )
    with running_admin(deployment.settings) as running:
        yield running


def session_ends(page: Page) -> None:
    """The session's cookie is gone, as the browser drops it once its Max-Age is past."""
    page.context.clear_cookies()


def test_a_session_that_ends_mid_edit_keeps_the_draft_through_the_sign_in(
    page: Page, admin: RunningAdmin
) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    page.get_by_role("link", name="New hook").click()
    draft = "id: erp\nevents: [order.paid]\nurl: https://erp.example/in\ndescription: typed\n"
    page.get_by_label("Definition (YAML").fill(draft)
    session_ends(page)
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your session ended")
    shot(page, "19-session-ended")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()

    # back in the editor with what was typed, checked and saved only when asked
    expect(page.get_by_role("heading", name="New hook")).to_be_visible()
    expect(page.get_by_label("Definition (YAML")).to_have_value(draft)
    assert admin.service.definition("erp") is None
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    expect(page.locator("pre.diff")).to_contain_text("+description: typed")
    session_ends(page)  # and again, on the review page
    page.get_by_role("button", name="Save to the hook store").click()
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Definition (YAML")).to_have_value(draft)
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    page.get_by_role("button", name="Save to the hook store").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    assert (admin.service.definition("erp") or {}).get("description") == "typed"


def test_a_session_that_ends_mid_edit_of_a_hook_with_secrets_keeps_them_masked_and_stored(
    page: Page, admin: RunningAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUGAA_TEST_ERP_TOKEN", "erp-bearer-9f2e-secret")
    stored = {
        "id": "erp",
        "events": ["order.paid"],
        "url": "https://erp.example/in",
        "auth": {"type": "bearer", "token": "${env:DUGAA_TEST_ERP_TOKEN}"},
    }
    with admin.client(headers=ADMIN) as client:
        assert client.post("/api/hooks", json=stored).status_code == 201
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    page.goto(admin.url + "/hooks/erp/edit")
    page.get_by_label("Timeout (e.g. 10s)").fill("5s")
    session_ends(page)
    page.locator("form.fields").get_by_role("button", name="Check and review").click()
    assert "DUGAA_TEST_ERP_TOKEN" not in page.content()
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Edit erp")).to_be_visible()
    shown = page.get_by_label("Definition (YAML").input_value()
    assert "timeout: 5s" in shown
    assert "token: '***'" in shown
    assert "DUGAA_TEST_ERP_TOKEN" not in page.content()
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    page.get_by_role("button", name="Save to the hook store").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    saved = admin.service.definition("erp") or {}
    assert (saved.get("timeout"), saved.get("auth")) == ("5s", stored["auth"])


def test_a_button_pressed_after_the_session_ended_leads_back_to_its_page(
    page: Page, admin: RunningAdmin
) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    session_ends(page)
    page.locator("#hook-audit").get_by_role("button", name="Pause").click()
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hooks")).to_be_visible()  # not "405"
    expect(page.locator("#hook-audit")).not_to_contain_text("paused")  # not sent by itself

    page.goto(admin.url + "/hooks/audit/try")
    session_ends(page)
    page.get_by_role("button", name="Render the request").click()
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Try audit")).to_be_visible()

    session_ends(page)
    page.get_by_role("button", name="Sign out").click()  # signed out already: nothing to ask
    expect(page).to_have_url(admin.url + "/login")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hooks")).to_be_visible()


def test_the_common_fields_form_shows_each_problem_beside_its_field(
    page: Page, admin: RunningAdmin
) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    page.get_by_role("link", name="New hook").click()
    page.get_by_label("Id", exact=True).fill("Bestellungen-Müller")
    page.get_by_label("Event types").fill("order.paid")
    page.get_by_label("URL", exact=True).fill("ftp://erp.example/in")
    page.locator("form.fields").get_by_role("button", name="Check and review").click()

    url = page.get_by_label("URL", exact=True)
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_have_accessible_description(re.compile('"ftp://erp.example/in" is not an http'))
    expect(page.locator("form.fields")).to_contain_text("is not an http(s) URL")
    identifier = page.get_by_label("Id", exact=True)
    expect(identifier).to_have_value("Bestellungen-Müller")
    expect(identifier).to_have_attribute("aria-invalid", "true")
    expect(identifier).to_have_accessible_description(
        re.compile('"Bestellungen-Müller" is not a valid id')
    )
    expect(page.get_by_label("Event types")).not_to_have_attribute("aria-invalid", "true")
    shot(page, "20-fields-problems")

    # fixed from the keyboard: Enter in a field checks the form again
    page.get_by_label("Id", exact=True).fill("bestellungen-mueller")
    page.get_by_label("URL", exact=True).fill("https://erp.example/in")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Review bestellungen-mueller")).to_be_visible()


def test_a_problem_beside_a_long_line_stays_on_the_screen(page: Page, admin: RunningAdmin) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    page.get_by_role("link", name="New hook").click()
    page.get_by_label("Definition (YAML").fill(
        "\n".join(
            [
                "id: erp",
                f"description: {LONG_DESCRIPTION}",
                "events: [order.paid]",
                "url: https://erp.example.com/api/v2/tenants/acme/integrations/webhooks/incoming"
                "/orders/paid?source=dugaa&version=2024-01-01",
                "format: yaml",
                "",
            ]
        )
    )
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    problem = page.locator("#line-5 .problem")
    expect(problem).to_contain_text('"yaml" is not allowed')
    expect(problem).to_be_in_viewport()
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    shot(page, "21-long-line-problem")


def test_a_bad_time_in_the_outcomes_filter_is_shown_beside_its_field(
    page: Page, admin: RunningAdmin
) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    page.goto(admin.url + "/hooks/audit/outcomes")
    page.get_by_label("Status").select_option("delivered")
    page.get_by_label("Since").fill("yesterday")
    page.get_by_role("button", name="Filter").click()

    expect(page.get_by_role("heading", name="Outcomes of audit")).to_be_visible()
    since = page.get_by_label("Since")
    expect(since).to_have_value("yesterday")
    expect(since).to_have_attribute("aria-invalid", "true")
    expect(since).to_have_accessible_description(re.compile("since: not a time: 'yesterday'"))
    expect(page.get_by_label("Status")).to_have_value("delivered")
    shot(page, "22-outcomes-bad-time")
    since.fill("2h")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("Since")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("main")).to_contain_text("No outcomes match.")


def test_an_error_page_keeps_the_navigation_and_the_sign_out(
    page: Page, admin: RunningAdmin
) -> None:
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    answer = page.goto(admin.url + "/hooks/no-such-hook/edit")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("no-such-hook")
    expect(page.locator("header")).to_contain_text("admin")
    shot(page, "23-not-found")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    page.goto(admin.url + "/hooks/no-such-hook/edit")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(admin.url + "/login")


def test_editing_a_hook_in_the_console_keeps_its_url_as_written(
    page: Page, admin: RunningAdmin
) -> None:
    written = "https://erp.example/in?since=2024-01-01T10:00:00+01:00&flag&q=%41"
    with admin.client(headers=ADMIN) as client:
        created = client.post(
            "/api/hooks", json={"id": "erp", "events": ["order.paid"], "url": written}
        )
        assert created.status_code == 201, created.text
    page.set_viewport_size({"width": 1360, "height": 800})
    sign_in(page, admin.url, ADMIN_TOKEN)
    expect(page.locator("#hook-erp .url")).to_have_text(written)  # shown as it is sent
    page.goto(admin.url + "/hooks/erp/edit")
    expect(page.get_by_label("URL", exact=True)).to_have_value(written)
    shown = page.get_by_label("Definition (YAML").input_value()
    page.get_by_label("Definition (YAML").fill(shown + "description: ERP orders\n")
    page.locator("form.yaml").get_by_role("button", name="Check and review").click()
    expect(page.locator("pre.diff .add")).to_have_count(2)  # the +++ line and the description
    page.get_by_role("button", name="Save to the hook store").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    assert (admin.service.definition("erp") or {}).get("url") == written
