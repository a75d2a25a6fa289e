"""The console without Kafka: signing in (cookie, rate limit, no open redirect), sessions and
roles on pages, CSRF on forms, and the editor's problems beside their lines."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from admin_support import ADMIN_TOKEN, VIEWER, VIEWER_TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.index.rows import AttemptRow, LetterRow, ResultRow

HTML = {"accept": "text/html"}
OWN_PAGE = {"sec-fetch-site": "same-origin"}  # what a browser says of a console page's form


def sign_in(client: TestClient, token: str) -> str:
    """Sign in; the CSRF token of the session, read from a page's form."""
    answer = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get("/dead-letters").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_pages_send_a_stranger_to_the_sign_in_page_and_back(client: TestClient) -> None:
    answer = client.get("/hooks/x/outcomes?status=delivered", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/hooks/x/outcomes%3Fstatus%3Ddelivered"
    page = client.get("/login")
    assert '<label for="token">' in page.text
    assert "<script" not in page.text


def test_signing_in_sets_a_strict_http_only_session_cookie(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"token": ADMIN_TOKEN, "next": "/events"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/events"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("dugaa_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=60" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert ADMIN_TOKEN not in cookie
    assert client.get("/events").status_code == 200


def test_a_wrong_token_is_refused_and_attempts_are_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/login", data={"token": "wrong-token-0123456789"}).status_code == 401
    limited = client.post("/login", data={"token": ADMIN_TOKEN})
    assert limited.status_code == 429
    assert "Too many attempts" in limited.text
    assert "dugaa_session" not in client.cookies


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_sign_in_another_site_posts_is_refused_and_spends_no_attempt(
    client: TestClient, site: str
) -> None:
    """Another site's page (or another port of the host) posting the sign-in form would sign
    the browser in with a token of its choosing (a tenant's), or lock its address out."""
    elsewhere = {"sec-fetch-site": site, "origin": "https://evil.example"}
    signed = client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "next": "/"},
        headers=elsewhere,
        follow_redirects=False,
    )
    assert signed.status_code == 403
    assert "this form came from another site" in signed.text
    assert "set-cookie" not in signed.headers
    for _ in range(6):
        wrong = client.post("/login", data={"token": "wrong-token-0123456789"}, headers=elsewhere)
        assert wrong.status_code == 403
    for own in (OWN_PAGE, {"sec-fetch-site": "none"}, {}):  # a console page, a bookmark, a script
        client.cookies.clear()
        answer = client.post(
            "/login", data={"token": ADMIN_TOKEN, "next": "/"}, headers=own, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["set-cookie"].startswith("dugaa_session=")


def test_sign_in_never_redirects_off_the_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = client.post(
            "/login", data={"token": ADMIN_TOKEN, "next": target}, follow_redirects=False
        )
        assert answer.headers["location"] == "/"


def test_a_viewer_sees_pages_but_not_the_editor_nor_the_try_page(client: TestClient) -> None:
    sign_in(client, VIEWER_TOKEN)
    assert client.get("/").status_code == 200
    assert "New hook" not in client.get("/").text
    refused = client.get("/hooks/new", headers=HTML)
    assert refused.status_code == 403
    assert "needs the admin role" in refused.text
    assert "<html" in refused.text


def test_a_form_without_the_session_csrf_token_is_refused(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    yaml = "id: a\nevents: [x]\nurl: http://127.0.0.1/a\n"
    assert client.post("/hooks/check", data={"yaml": yaml}).status_code == 403
    assert client.post("/hooks/check", data={"yaml": yaml, "csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/hooks/check", data={"yaml": yaml, "csrf": csrf}).status_code == 200


def test_the_editor_shows_each_problem_beside_its_line(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    yaml = "id: a\nevents: [x]\nurl: http://127.0.0.1/a\nformat: yaml\ntimeout: soon\n"
    page = client.post("/hooks/check", data={"yaml": yaml, "csrf": csrf})
    assert page.status_code == 422
    line4 = re.search(r'<tr class="bad" id="line-4">(.*?)</tr>', page.text, re.S)
    line5 = re.search(r'<tr class="bad" id="line-5">(.*?)</tr>', page.text, re.S)
    assert line4 is not None
    assert "format: " in line4.group(1)
    assert line5 is not None
    assert "is not a duration" in line5.group(1)
    assert 'id="line-3"' in page.text
    assert '<tr class="bad" id="line-3">' not in page.text


def test_signing_out_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_form_posted_after_the_session_ended_leads_back_to_its_page(
    client: TestClient,
) -> None:
    for posted, page in (("/hooks/x/pause", "/"), ("/hooks/x/try", "/hooks/x/try")):
        answer = client.post(posted, data={"csrf": "old"}, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next={page}"  # never a POST-only address
    ended = client.post("/logout", data={"csrf": "old"}, follow_redirects=False)
    assert (ended.status_code, ended.headers["location"]) == (303, "/login")


def test_an_edit_posted_after_the_session_ended_comes_back_in_the_editor_once_signed_in(
    client: TestClient,
) -> None:
    yaml = "id: a\nevents: [x]\nurl: https://a.example/<in>\n"
    ended = client.post("/hooks/check", data={"yaml": yaml, "csrf": "old"}, headers=HTML | OWN_PAGE)
    assert ended.status_code == 401
    assert "Your session ended" in ended.text
    draft = dict(re.findall(r'name="draft\.(\w+)" value="([^"]*)"', ended.text))
    assert draft == {"yaml": "id: a\nevents: [x]\nurl: https://a.example/&lt;in&gt;\n"}
    as_viewer = client.post(
        "/login",
        data={"token": VIEWER_TOKEN, "draft.yaml": yaml},
        headers=OWN_PAGE,
        follow_redirects=False,
    )
    assert (as_viewer.status_code, as_viewer.headers["location"]) == (303, "/")  # may not edit
    resumed = client.post(
        "/login", data={"token": ADMIN_TOKEN, "draft.yaml": yaml}, headers=OWN_PAGE
    )
    assert resumed.status_code == 200
    assert "dugaa_session=" in resumed.headers["set-cookie"]
    assert "Nothing was checked or saved" in resumed.text
    assert '<textarea id="yaml" name="yaml" rows="24" spellcheck="false">id: a' in resumed.text


@pytest.mark.parametrize(
    "told",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # a sibling sub-domain is another site's page too
        {"origin": "https://elsewhere.example"},
        {},  # a browser that says nothing
    ],
)
def test_another_sites_form_never_fills_the_editor_through_the_sign_in(
    client: TestClient, told: dict[str, str]
) -> None:
    """A form on another site, posted to the console with no cookie, would otherwise come back
    as the editor's draft once the admin signs in: one click from saved."""
    yaml = "id: evil\nevents: ['*']\nurl: https://evil.example/in\n"
    ended = client.post("/hooks/check", data={"yaml": yaml, "csrf": "x"}, headers=HTML | told)
    assert "draft." not in ended.text
    assert "evil.example" not in ended.text
    signed = client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "draft.yaml": yaml},
        headers=told,
        follow_redirects=False,
    )
    assert "evil.example" not in signed.text
    if told.get("sec-fetch-site") in ("cross-site", "same-site"):
        assert signed.status_code == 403  # not signed in at all: the test above
    else:
        assert (signed.status_code, signed.headers["location"]) == (303, "/")


def test_what_a_page_shows_is_escaped(client: TestClient) -> None:
    sign_in(client, VIEWER_TOKEN)
    page = client.get("/events", params={"id": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_an_attempt_excerpt_is_shown_escaped_on_the_event_and_hook_pages(
    client: TestClient, app: FastAPI
) -> None:
    row = AttemptRow(
        event_id="e-1",
        hook_id="erp",
        attempt=1,
        idempotency_key="msg_1",
        http_status=503,
        latency_ms=12.5,
        error_kind="http_status",
        error="HTTP 503: unexpected status",
        response_excerpt='<img src=x onerror="alert(1)">busy',
        at=1_793_611_800.0,
        where="attempts/0/1",
    )
    app.state.admin.index.add([], [], {}, [row])
    sign_in(client, VIEWER_TOKEN)

    for page in (client.get("/events", params={"id": "e-1"}), client.get("/hooks/erp/outcomes")):
        assert page.status_code == 200
        assert "<img src=x" not in page.text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;busy" in page.text
        assert "HTTP 503: unexpected status" in page.text
    hook_page = client.get("/hooks/erp/outcomes").text
    assert '<th scope="col">5xx</th>' in hook_page


def test_the_event_page_and_the_api_show_each_deliverys_trace_id(
    client: TestClient, app: FastAPI
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    row = ResultRow("e-9", "order.paid", "crm", "dead_lettered", 1, 500, 2.0, "http_status",
                    "HTTP 500", "msg_1", 1000.0, "results/0/1", trace_id=trace)  # fmt: skip
    letter = LetterRow("dlq/0/1", "crm", "http_status", "HTTP 500", 500, 1, "msg_1", "e-9",
                       "order.paid", 1000.0, "", trace_id=trace)  # fmt: skip
    untraced = replace(row, hook_id="erp", where="results/0/2", trace_id=None)
    app.state.admin.index.add([row, untraced], [letter], {})
    sign_in(client, VIEWER_TOKEN)
    page = client.get("/events", params={"id": "e-9"}).text
    assert page.count(f'<code class="trace-id">{trace}</code>') == 2  # the outcome, the letter
    found = client.get("/api/events/e-9", headers=VIEWER).json()
    assert {o["hook_id"]: o["trace_id"] for o in found["outcomes"]} == {"crm": trace, "erp": None}
    assert [d["trace_id"] for d in found["dead_letters"]] == [trace]
