"""A hook's client: the texts of failed attempts never carry a secret, whatever the library says."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import httpx
import pytest

from dispatcher.http.aiosession import translate
from dispatcher.http.cpu import CpuGauge
from dispatcher.http.limits import CircuitBreaker
from dispatcher.http.sender import Attempt, HookClient
from dispatcher.model.hook import CircuitSpec, Hook
from dispatcher.model.request import Request
from dispatcher.pipeline.judge import Verdict
from dispatcher.security.auth import build_auth

API_KEY = "qk/9f2c81e0+&=secret"


def _hook(**extra: Any) -> Hook:
    raw = {
        "id": "sms",
        "events": ["x"],
        "url": "https://sms.example.com/send?to=1",
        "auth": {"type": "api_key", "name": "code", "value": API_KEY, "in": "query"},
        **extra,
    }
    return Hook.from_dict(raw)


def _attempt_text(hook: Hook, fail: Any) -> str:
    async def main() -> str:
        client = HookClient(hook, httpx.MockTransport(fail), build_auth(hook.auth))
        try:
            attempt = await client.send(Request("POST", hook.url, (), b"{}"))
        finally:
            await client.aclose()
        assert not attempt.verdict.ok
        return attempt.verdict.error or ""

    return asyncio.run(main())


def _aiohttp_write_failure(request: httpx.Request) -> httpx.Response:
    """What the transport raises when aiohttp cannot write a body: its message names the URL."""
    url = str(request.url)
    error = aiohttp.ClientOSError(104, f"Can not write request body for {url}")
    raise translate(error, request.url.host)


def _echo_url_failure(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"failed for {request.url!s} and {request.url.query.decode()}")


@pytest.mark.parametrize("fail", [_aiohttp_write_failure, _echo_url_failure])
def test_an_error_naming_the_request_url_shows_it_masked(fail: Any) -> None:
    text = _attempt_text(_hook(), fail)
    assert "https://sms.example.com/send?to=1&code=***" in text  # the URL, shown masked
    for form in (API_KEY, "qk%2F9f2c81e0%2B%26%3Dsecret", "qk/9f2c81e0+&"):
        assert form not in text
    assert "9f2c81e0" not in text


def test_a_secret_in_a_message_without_a_url_is_masked_too() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"peer said {API_KEY!r}")

    text = _attempt_text(_hook(), fail)
    assert "9f2c81e0" not in text
    assert text == "ReadError: peer said '***'"


def _gauge(saturated: bool) -> CpuGauge:
    """A gauge whose every reading finds the process saturated (its CPU clock keeping up with
    the wall clock), or idle."""
    wall = itertools.count(0.0, 1.0)
    cpu = itertools.count(0.0, 1.0 if saturated else 0.0)
    return CpuGauge(clock=lambda: next(wall), cpu_clock=lambda: next(cpu))


@pytest.mark.parametrize("saturated", [False, True])
def test_a_freed_slot_lets_the_waiting_requests_go_out_before_the_answer_is_handed_back(
    saturated: bool,
) -> None:
    """Answers come in bursts: the pairs waiting for the slots a burst frees must send their
    requests before the burst's outcomes are recorded, or the slots stand idle meanwhile. Not
    when the process is short of CPU: there the answers go on in turn, sparing the event loop
    two steps a delivery (`_after_waiters`)."""
    hook = Hook.from_dict(
        {"id": "h", "events": ["x"], "url": "https://h.example.com/", "concurrency": 2}
    )
    order: list[str] = []

    class Client(HookClient):
        async def _exchange(self, request: Request) -> Verdict:
            name = request.content.decode()
            order.append(f"sent {name}")
            if name in ("a", "b"):
                await answers.wait()  # a and b are answered together: a burst
            return Verdict(ok=True, status=200)

    async def send(client: HookClient, name: str) -> None:
        await client.send(Request("POST", hook.url, (), name.encode()))
        order.append(f"answered {name}")

    async def main() -> None:
        transport = httpx.MockTransport(lambda _r: httpx.Response(200))
        client = Client(hook, transport, cpu=_gauge(saturated))
        tasks = [asyncio.create_task(send(client, n)) for n in "abcd"]
        while len(order) < 2:
            await asyncio.sleep(0)
        answers.set()
        await asyncio.gather(*tasks)

    answers = asyncio.Event()
    asyncio.run(main())

    assert order[:2] == ["sent a", "sent b"]
    if saturated:
        assert order[2:] == [
            "answered a",
            "answered b",
            "sent c",
            "answered c",
            "sent d",
            "answered d",
        ]
    else:
        assert order.index("sent c") < order.index("answered a")
        assert order.index("sent d") < order.index("answered a")


@pytest.mark.parametrize(
    ("verdict", "label"),
    [
        (Verdict(ok=True, kind=None, retryable=False, status=200), "2xx"),
        (Verdict(ok=False, kind="http_3xx", retryable=False, status=302), "3xx"),
        (Verdict(ok=False, kind="http_4xx", retryable=False, status=404), "4xx"),
        (Verdict(ok=False, kind="http_5xx", retryable=True, status=503), "5xx"),
        (Verdict(ok=False, kind="http_5xx", retryable=True, status=799), "5xx"),
        (Verdict(ok=False, kind="http", retryable=False, status=101), "1xx"),
        (Verdict(ok=False, kind="timeout", retryable=True, status=None), "timeout"),
        (Verdict(ok=False, kind="network", retryable=True, status=None), "network"),
        (Verdict(ok=False, kind="response_invalid", retryable=False, status=200), "invalid"),
        (Verdict(ok=False, kind="auth", retryable=False, status=None), "network"),
    ],
)
def test_an_attempt_is_counted_under_a_bounded_result_label(verdict: Verdict, label: str) -> None:
    assert Attempt(verdict, 0.1).result_label == label


def _answers(hook: Hook, answer: httpx.Response, times: int) -> tuple[list[Attempt], str]:
    """`times` attempts of `hook` at a server giving `answer`, and its breaker's state after."""

    async def main() -> tuple[list[Attempt], str]:
        client = HookClient(hook, httpx.MockTransport(lambda _: answer))
        try:
            request = Request("POST", hook.url, (), b"{}")
            attempts = [await client.send(request) for _ in range(times)]
        finally:
            await client.aclose()
        return attempts, client.breaker.state

    return asyncio.run(main())


def test_answers_that_fail_expect_are_permanent_and_never_open_the_breaker() -> None:
    # the endpoint is up and answering: its "rejected" is the third party's word on the
    # request, as a 400 is, not a sign of an endpoint to spare
    hook = _hook(response={"expect": [{"path": "status", "equals": "ok"}]})
    rejected = httpx.Response(200, json={"status": "rejected"})
    attempts, state = _answers(hook, rejected, 40)
    assert {(a.verdict.kind, a.verdict.retryable, a.result_label) for a in attempts} == {
        ("response_invalid", False, "invalid")
    }
    assert state == "closed"
    _, state = _answers(hook, httpx.Response(503), 40)
    assert state == "open"  # where retryable failures do open it


@pytest.mark.parametrize(("status", "retryable"), [(200, False), (400, False), (503, True)])
def test_an_undecodable_answer_is_retried_only_when_its_status_is(
    status: int, retryable: bool
) -> None:
    encoded = {"content-encoding": "gzip"}
    garbage = httpx.Response(status, headers=encoded, stream=httpx.ByteStream(b"not gzip"))
    (attempt,), _ = _answers(_hook(), garbage, 1)
    assert attempt.verdict.kind == "response_invalid"
    assert attempt.verdict.status == status
    assert attempt.verdict.retryable is retryable


def test_an_answer_failing_expect_is_quoted_with_secrets_and_echoed_credentials_masked() -> None:
    # some servers echo the request's headers back; `expect` quotes what it found
    hook = _hook(response={"expect": [{"path": "status", "equals": "ok"}]})
    said = f"refused {API_KEY}, Bearer tok3n-0f-oauth2"
    (attempt,), _ = _answers(hook, httpx.Response(200, json={"status": said}), 1)
    assert attempt.verdict.kind == "response_invalid"
    assert attempt.verdict.error == 'expected status to equal "ok", got "refused ***, Bearer ***"'


def test_values_captured_from_an_answer_echoing_credentials_are_masked() -> None:
    # the README's own example captures a whole text reply; a server echoing the request puts
    # the hook's key, or a bearer token, in what is captured, and captures go to every result
    hook = _hook(response={"capture": {"reply": "said", "echo": "request", "id": "id"}})
    answer = {
        "said": f"OK sent with {API_KEY}",
        "request": {"query": [f"code={API_KEY}"], "authorization": "Bearer tok3n-0f-oauth2"},
        "id": 42,
    }
    (attempt,), _ = _answers(hook, httpx.Response(200, json=answer), 1)
    assert attempt.verdict.ok
    assert attempt.verdict.captured == {
        "reply": "OK sent with ***",
        "echo": {"query": ["code=***"], "authorization": "Bearer ***"},
        "id": 42,
    }


def test_a_probe_cancelled_mid_exchange_goes_back_and_the_circuit_closes() -> None:
    """A probe cut short (its partition left this worker while it was out) has no verdict: its
    probe goes back, or the circuit, every probe out and none to answer, refuses for good."""
    hook = _hook(url="https://h.example.com/")
    now = [1000.0]
    hang = asyncio.Event()

    class Client(HookClient):
        async def _exchange(self, request: Request) -> Verdict:
            if request.content == b"hang":
                await hang.wait()  # never set: a probe cut while out
            return Verdict(ok=True, status=200)

    async def main() -> list[Attempt]:
        client = Client(hook, httpx.MockTransport(lambda _r: httpx.Response(200)))
        client.breaker = CircuitBreaker(CircuitSpec(probes=1), clock=lambda: now[0])
        for _ in range(20):
            client.breaker.record(False)
        now[0] += 15.0  # half-open: one probe
        probe = asyncio.create_task(client.send(Request("POST", hook.url, (), b"hang")))
        while not client.breaker.refuses():  # the probe is out
            await asyncio.sleep(0)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        attempts = [await client.send(Request("POST", hook.url, (), b"ok")) for _ in range(2)]
        await client.aclose()
        return attempts

    attempts = asyncio.run(main())

    assert [a.sent for a in attempts] == [True, True]  # the probe went back, then it closed
    assert all(a.verdict.ok for a in attempts)


@pytest.mark.parametrize(
    ("circuit", "sent"),
    [({"minimum_calls": 2, "failure_ratio": 1}, [True, True, False]), ({}, [True, True, True])],
)
def test_the_hooks_circuit_settings_decide_when_its_breaker_opens(
    circuit: dict[str, Any], sent: list[bool]
) -> None:
    """Two failed attempts open a circuit set to judge after two; the default judges after 20."""
    hook = _hook(url="https://h.example.com/", circuit=circuit)

    async def main() -> list[Attempt]:
        client = HookClient(hook, httpx.MockTransport(lambda _r: httpx.Response(503)))
        attempts = [await client.send(Request("POST", hook.url, (), b"{}")) for _ in range(3)]
        await client.aclose()
        return attempts

    assert [attempt.sent for attempt in asyncio.run(main())] == sent
