"""One hook's HTTP client: its transport, credentials and limits; one attempt at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from dispatcher.errors import DeliveryError, RetryableError, Withdrawn
from dispatcher.hooks.masking import mask_text
from dispatcher.http.inflate import Inflater
from dispatcher.http.limits import CircuitBreaker, TokenBucket
from dispatcher.model.hook import Hook
from dispatcher.pipeline.judge import Verdict, judge

BREAKER_OPEN = Verdict.failure("network", "circuit breaker open", retryable=True)
TransportFactory = Callable[[Hook], httpx.AsyncBaseTransport]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP exchange: its verdict and how long it took."""

    verdict: Verdict
    seconds: float
    sent: bool = True  # False: the circuit breaker held the request back

    @property
    def result_label(self) -> str:
        """The bounded `result` label of `dispatcher_delivery_attempts_total`."""
        status = self.verdict.status
        if self.verdict.kind in ("timeout", "network"):
            return self.verdict.kind
        if self.verdict.kind == "response_invalid":
            return "invalid"
        if status is None:
            return "network"
        return f"{min(max(status // 100, 1), 5)}xx"


class HookClient:
    """Sends requests for one hook within its concurrency, rate limit and circuit breaker."""

    def __init__(
        self, hook: Hook, transport: httpx.AsyncBaseTransport, auth: httpx.Auth | None = None
    ) -> None:
        self.hook = hook
        self.auth = auth
        self.client = _Client(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(hook.timeout),
            trust_env=False,
        )
        self.slots = asyncio.Semaphore(hook.concurrency)
        self.bucket = TokenBucket(hook.rate_limit) if hook.rate_limit else None
        self.breaker = CircuitBreaker()

    async def send(
        self, request: httpx.Request, wanted: Callable[[], bool] = lambda: True
    ) -> Attempt:
        """One attempt within the hook's limits; the whole exchange bounded by its timeout.

        `wanted()` is asked once a slot is free: False (the pair's partition is leaving this
        worker) raises `Withdrawn` instead of starting the attempt.
        """
        async with self.slots:
            if not wanted():
                raise Withdrawn("the pair's partition left this worker")
            # Checked once a slot is free: pairs queued behind a dying endpoint must not each
            # wait out its timeout after the breaker has opened.
            if not self.breaker.allow():
                return Attempt(BREAKER_OPEN, 0.0, sent=False)
            if self.bucket is not None:
                await self.bucket.acquire()
            started = time.monotonic()
            verdict = await self._exchange(request)
            seconds = time.monotonic() - started
        self.breaker.record(verdict.ok or not verdict.retryable)
        return Attempt(verdict, seconds)

    async def _exchange(self, request: httpx.Request) -> Verdict:
        try:
            async with asyncio.timeout(self.hook.timeout):
                response = await self.client.send(request, auth=self.auth, stream=True)
                try:
                    # one byte past the cap, so a larger body is known to be larger
                    body = await _read_capped(response, self.hook.response.max_bytes + 1)
                except httpx.DecodingError as exc:
                    return Verdict.failure(
                        "response_invalid",
                        f"HTTP {response.status_code}: {error_text(exc, self.hook)}",
                        retryable=True,
                        status=response.status_code,
                    )
                finally:
                    await response.aclose()
        except TimeoutError:
            return Verdict.failure(
                "timeout", f"no complete answer within {self.hook.timeout:g}s", retryable=True
            )
        except httpx.TimeoutException:
            return Verdict.failure(
                "timeout", f"no complete answer within {self.hook.timeout:g}s", retryable=True
            )
        except DeliveryError as exc:
            return Verdict.failure(
                exc.kind, error_text(exc, self.hook, named=False), retryable=_retryable(exc)
            )
        except httpx.TransportError as exc:
            return Verdict.failure("network", error_text(exc, self.hook), retryable=True)
        except httpx.HTTPError as exc:
            return Verdict.failure("network", error_text(exc, self.hook), retryable=True)
        except ValueError as exc:
            # aiohttp refuses a header with a line break (header injection): static headers are
            # checked at load, so this is a credential, e.g. an OAuth2 token a server sent
            return Verdict.failure(
                "auth",
                f"request refused before sending: {error_text(exc, self.hook)}",
                retryable=False,
            )
        return judge(
            self.hook.response, response.status_code, response.headers, body, now=time.time()
        )

    async def aclose(self) -> None:
        await self.client.aclose()


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _Client(httpx.AsyncClient):
    """httpx's client without a cookie jar. Each request is built whole and never carries the
    client's cookies, yet httpx read every response for Set-Cookie: ~7% of a delivery's CPU."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        return None


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """At most `cap` bytes of the decoded body; the rest is never read, nor inflated."""
    if response.is_stream_consumed:  # read in full already (a mock transport's answer)
        return response.content[:cap]
    inflater = Inflater(response.headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        chunk = inflater.feed(raw, cap - size)
        chunks.append(chunk)
        size += len(chunk)
        if size >= cap or inflater.finished:
            break
    return b"".join(chunks)


def _retryable(exc: DeliveryError) -> bool:
    """Transient failures: network-like errors, and credentials the token endpoint could not
    issue because it was down or overloaded (a refusal of the credentials is permanent)."""
    if isinstance(exc, RetryableError):
        return True
    if exc.kind == "auth":
        status = getattr(exc, "status", None)
        return status is None or status >= 500 or status == 429
    return False


def error_text(exc: BaseException, hook: Hook, *, named: bool = True) -> str:
    """`exc` as the text of a verdict, which leaves the HTTP layer for outcomes, dead letters and
    the admin API: library messages may carry the request URL ("Can not write request body for
    <url>"), and with `api_key` in the query the URL holds the key. So every URL in it is shown
    masked as the hook's URL is, and the hook's secret values are masked wherever they appear."""
    text = mask_text(str(exc) or type(exc).__name__, hook)
    return (f"{type(exc).__name__}: {text}" if named else text)[:500]
