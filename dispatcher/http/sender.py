"""One hook's HTTP client: its transport, credentials and limits; one attempt at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from dispatcher.errors import AuthError, DeliveryError, RetryableError, Withdrawn
from dispatcher.hooks.masking import TextMask, mask_text
from dispatcher.http.cpu import PROCESS_CPU, CpuGauge
from dispatcher.http.deadlines import Deadlines
from dispatcher.http.exchange import Exchange, HttpxExchange, Response, Undecodable
from dispatcher.http.limits import CircuitBreaker, Slots, TokenBucket
from dispatcher.http.transport import GuardedTransport
from dispatcher.metrics import status_class
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request
from dispatcher.model.values import quick_init
from dispatcher.pipeline.excerpt import mask_credentials
from dispatcher.pipeline.judge import Verdict, judge, retryable_status
from dispatcher.security.auth import Credentials
from dispatcher.security.oauth2 import OAuth2ClientCredentials

BREAKER_OPEN = Verdict.failure("network", "circuit breaker open", retryable=True)
CUT_SHORT = Verdict.failure(
    "cut",
    "cut short before its answer was read: the worker let go of the pair (a stop's drain"
    " deadline, its partition leaving, a lock hand-off); the receiver may have had the request",
    retryable=True,
)
_CUT = "dispatcher_cut_attempt"  # where a cancellation carries the attempt it cut (`cut_attempt`)


@quick_init
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
        return status_class(status)


class HookClient:
    """Sends requests for one hook within its concurrency, rate limit and circuit breaker.

    `transport` is the hook's guarded transport (its `exchange` is the lean path: the HTTP/1.1
    client of http/wire.py, no httpx objects per request) or any other httpx transport, such
    as a test's mock.
    """

    def __init__(
        self,
        hook: Hook,
        transport: httpx.AsyncBaseTransport,
        auth: httpx.Auth | None = None,
        cpu: CpuGauge = PROCESS_CPU,
    ) -> None:
        self.hook = hook
        self.auth = auth
        self.cpu = cpu  # saturated: no steps back after an exchange (`_after_waiters`)
        self._wire: Exchange = (
            transport
            if isinstance(transport, GuardedTransport)
            else HttpxExchange(transport, hook.timeout)
        )
        self._cap = hook.response.max_bytes + 1  # one byte past the cap: a larger body shows
        self._mask = TextMask(hook) if hook.response.capture else None
        self._timeout_verdict = Verdict.failure(
            "timeout", f"no complete answer within {hook.timeout:g}s", retryable=True
        )
        self.slots = Slots(hook.concurrency)
        self.bucket = TokenBucket(hook.rate_limit) if hook.rate_limit else None
        self.breaker = CircuitBreaker(hook.circuit)
        self._deadlines: Deadlines | None = None  # of the loop it last ran on
        self.pairs = 0  # pairs whose delivery runs on this client (`taken`, `ended`)
        self.on_idle: Callable[[HookClient], None] | None = None  # told as its last pair ends

    def taken(self) -> None:
        """A pair's delivery runs on this client from now until `ended`, across its attempts
        and the waits between them (when it holds no slot)."""
        self.pairs += 1

    def ended(self) -> None:
        """A pair's delivery on this client ended; `on_idle` is told when it was the last."""
        self.pairs -= 1
        if self.pairs == 0 and self.on_idle is not None:
            self.on_idle(self)

    def idle(self) -> bool:
        """Whether nothing runs on this client: no pair's delivery, no exchange in flight, no
        pair waiting for one of its slots."""
        return self.pairs == 0 and self.slots.idle()

    def _deadlines_here(self) -> Deadlines:
        """The deadlines of the loop running this task: those of the last one while it runs
        on this thread (a thread runs one loop at a time). Python 3.11 makes a getpid() system
        call of every `get_running_loop()`: asked only when the loop changed."""
        deadlines = self._deadlines
        if deadlines is None or not deadlines.running_here():
            deadlines = self._deadlines = Deadlines(asyncio.get_running_loop())
        return deadlines

    async def send(
        self,
        request: Request,
        wanted: Callable[[], bool] = lambda: True,
        opened: Callable[[Request], Request] | None = None,
    ) -> Attempt:
        """One attempt within the hook's limits; the whole exchange bounded by its timeout.

        `wanted()` is asked once a slot is free: False (the pair's partition is leaving this
        worker) raises `Withdrawn` instead of starting the attempt. `opened`, when given, is told
        of the attempt as it starts (after the breaker and the rate limit let it through) and
        returns the request to send: tracing starts the attempt's span there and adds its
        `traceparent`.
        """
        async with self.slots:
            if not wanted():
                raise Withdrawn("the pair's partition left this worker")
            # Checked once a slot is free: pairs queued behind a dying endpoint must not each
            # wait out its timeout after the breaker has opened.
            if not self.breaker.allow():
                return Attempt(BREAKER_OPEN, 0.0, sent=False)
            opening = self.breaker.opened_at  # not None: this attempt is one of its probes
            # Cut short (a revoke, a stop): no verdict to judge the hook by, but a probe goes
            # back, else the circuit would wait for ever on the result of a probe that is gone.
            if self.bucket is not None or opened is not None:  # (no `try` for most attempts)
                try:
                    if self.bucket is not None:
                        await self.bucket.acquire()
                    if opened is not None:
                        request = opened(request)
                except BaseException:
                    self.breaker.forgo(opening)
                    raise
            started = time.monotonic()
            try:
                verdict = await self._exchange(request)
            except BaseException as exc:
                self.breaker.forgo(opening)
                if isinstance(exc, asyncio.CancelledError):  # the request may have reached it
                    _carry(exc, Attempt(CUT_SHORT, time.monotonic() - started))
                raise
            seconds = time.monotonic() - started
        self.breaker.record(verdict.ok or not verdict.retryable)
        if self.slots.locked() and not self.cpu.saturated():
            try:
                await _after_waiters()
            except asyncio.CancelledError as exc:  # cut once answered: the answer stands
                _carry(exc, Attempt(verdict, seconds))
                raise
        return Attempt(verdict, seconds)

    async def _exchange(self, request: Request) -> Verdict:
        deadline = self._deadlines_here().start(self.hook.timeout)
        timed_out = False
        try:
            try:
                response = await self._authorized(request)
            finally:
                timed_out = deadline.end()
        except asyncio.CancelledError:
            if timed_out:
                return self._timeout_verdict
            raise
        except (TimeoutError, httpx.TimeoutException):
            return self._timeout_verdict
        except Undecodable as exc:
            # an answer, though unreadable: retried as its status would be (a 200 was taken)
            return Verdict.failure(
                "response_invalid",
                f"HTTP {exc.status}: {error_text(exc, self.hook, named=False)}",
                retryable=retryable_status(exc.status),
                status=exc.status,
            )
        except DeliveryError as exc:
            return Verdict.failure(
                exc.kind, error_text(exc, self.hook, named=False), retryable=_retryable(exc)
            )
        except httpx.HTTPError as exc:
            return Verdict.failure("network", error_text(exc, self.hook), retryable=True)
        except ValueError as exc:
            # a header with a line break is refused before it is written (header injection):
            # static headers are checked at load, so this is a credential, e.g. an OAuth2
            # token a server sent
            return Verdict.failure(
                "auth",
                f"request refused before sending: {error_text(exc, self.hook)}",
                retryable=False,
            )
        verdict = judge(
            self.hook.response, response.status, response.headers, response.body, now=time.time()
        )
        if verdict.kind == "response_invalid" and verdict.error:
            verdict = replace(verdict, error=answer_text(verdict.error, self.hook))
        if verdict.captured and self._mask is not None:
            verdict = replace(verdict, captured=shown_captures(verdict.captured, self._mask))
        return verdict

    def _authorized(self, request: Request) -> Awaitable[Response]:
        """The exchange with the hook's credentials (the wire's own coroutine, but on OAuth2)."""
        auth = self.auth
        if auth is None:
            return self._wire.exchange(request, self._cap)
        if isinstance(auth, Credentials):
            return self._wire.exchange(auth.apply(request), self._cap)
        if isinstance(auth, OAuth2ClientCredentials):
            return self._bearer(request, auth)
        raise TypeError(f"unsupported credentials: {type(auth).__name__}")

    async def _bearer(self, request: Request, auth: OAuth2ClientCredentials) -> Response:
        """The exchange with an OAuth2 access token; a 401 fetches one fresh token."""
        for _ in (1, 2):
            token = await auth.current()
            bearer = ("authorization", f"Bearer {token.value.reveal()}")
            response = await self._wire.exchange(request.with_headers(bearer), self._cap)
            if response.status != 401:
                return response
            auth.refused(token)
        raise AuthError("the API refused a freshly fetched token (401)", status=401)

    async def aclose(self) -> None:
        if isinstance(self.auth, OAuth2ClientCredentials):
            await self.auth.aclose()  # before the pool closes its token client under it
        await self._wire.aclose()


def cut_attempt(exc: BaseException) -> Attempt | None:
    """The attempt that `exc`, a cancellation raised out of `HookClient.send`, cut once it was
    under way: with its answer's verdict when the answer came before the cut, else with
    `CUT_SHORT`, timed from sending to the cut. None: it cut no attempt (one waiting for a
    slot or the rate limit had not started)."""
    attempt = getattr(exc, _CUT, None)
    return attempt if isinstance(attempt, Attempt) else None


def _carry(exc: asyncio.CancelledError, attempt: Attempt) -> None:
    """Have `exc` carry the attempt it cut (`cut_attempt`): a cancellation must go on being
    one, so the attempt rides on it rather than in an exception of its own."""
    setattr(exc, _CUT, attempt)


async def _after_waiters() -> None:
    """Step back twice on the event loop, so that the pairs woken by the slots freed in this
    turn send their requests before this one's outcome is recorded.

    Answers arrive in bursts: a burst of n answers woke n waiting pairs, but each woken pair ran
    only after every answer of the burst had been judged and its outcome written (~100 us
    each), so the last slot stood idle for the whole burst, and the bursts kept their shape
    (s2: 500 slots on a 200 ms endpoint turned over every ~240 ms). One step back would put
    each woken pair behind one outcome only; the second puts every outcome behind every send.

    Only while the process has CPU to spare (`HookClient.send`): a step costs little alone, but
    two per delivery cut the work the loop does per turn into smaller pieces, and a worker
    using its whole core spent 12-20% more CPU per delivery with them (scenario 1). There the
    woken pairs gain nothing by going first: the core, not the slot, is what they wait for."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _retryable(exc: DeliveryError) -> bool:
    """Transient failures: network-like errors, and credentials the token endpoint could not
    issue because it was down or overloaded (a refusal of the credentials is permanent)."""
    if isinstance(exc, RetryableError):
        return True
    if exc.kind == "auth":
        status = getattr(exc, "status", None)
        return status is None or status >= 500 or status == 429
    return False


def answer_text(text: str, hook: Hook) -> str:
    """A verdict's text that quotes the answer (`expected status to equal "ok", got "..."`) as it
    may leave the HTTP layer: a server may echo the request's credentials, so the hook's secret
    values and URLs are masked as in `error_text`, and a credential after a scheme (`Bearer ...`)
    as in an attempt record's excerpt."""
    return mask_credentials(mask_text(text, hook))


def shown_captures(captured: dict[str, Any], mask: TextMask) -> dict[str, Any]:
    """Values captured from an answer as they may leave the HTTP layer (results, dead letters,
    the admin API): masked as `answer_text` masks a quote of the answer, which they are, every
    text however deep in a captured object or list."""
    return {name: _shown(value, mask) for name, value in captured.items()}


def _shown(value: Any, mask: TextMask) -> Any:
    if isinstance(value, str):
        return mask_credentials(mask(value))
    if isinstance(value, dict):
        return {key: _shown(item, mask) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown(item, mask) for item in value]
    return value


def error_text(exc: BaseException, hook: Hook, *, named: bool = True) -> str:
    """`exc` as the text of a verdict, which leaves the HTTP layer for outcomes, dead letters and
    the admin API: library messages may carry the request URL ("Can not write request body for
    <url>"), and with `api_key` in the query the URL holds the key. So every URL in it is shown
    masked as the hook's URL is, and the hook's secret values are masked wherever they appear."""
    text = mask_text(str(exc) or type(exc).__name__, hook)
    return (f"{type(exc).__name__}: {text}" if named else text)[:500]
