"""The console's sessions: a signed, expiring cookie that carries the role and a CSRF token, and
a limit on sign-in attempts.

The cookie is HttpOnly and SameSite=Strict (Secure when the request came over https); it holds
no token, only the role (and tenant) it was exchanged for and a fingerprint of the token (a keyed
hash of token, role and tenant, never the token), signed with `admin.session_key`, or else with
a key made when the process starts (a restart then signs everyone out). Each request checks the
fingerprint against the tokens configured now: a session of a token removed, or given another
role or tenant, is signed out. Signing out denies the session's id in this process until the
cookie would expire. Every form carries the session's CSRF token, compared in constant time
before any change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dispatcher.api.auth import Grant, Principal, Tokens
from dispatcher.config.admin import ROLES, Admin, Role
from dispatcher.config.secrets import resolve
from dispatcher.errors import ConfigError

COOKIE = "dugaa_session"
MIN_KEY_CHARS = 32
ENDED_KEPT = 100_000  # signed-out sessions remembered until they expire (bounded)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console user: the role, the CSRF token its forms carry, the tenant its token
    is limited to, the session's id and when its cookie expires."""

    role: Role
    csrf: str
    tenant: str | None = None
    id: str = ""
    expires: float = 0.0

    @property
    def principal(self) -> Principal:
        return Principal(self.role, "session", self.tenant)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """Issues, reads and ends session cookies."""

    def __init__(self, ttl: float, key: str | None = None) -> None:
        self.ttl = ttl
        key = key or secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(key, salt="session")
        self._fingerprint_key = hmac.new(key.encode(), b"token-fingerprint", "sha256").digest()
        self._ended: dict[str, float] = {}  # session id -> when its cookie expires
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, admin: Admin) -> Sessions:
        """Sessions signed with `admin.session_key` when set (`ConfigError` when it resolves to
        fewer than 32 characters), else with a key of this start's own."""
        if admin.session_key is None:
            return cls(admin.session_ttl)
        key = resolve(admin.session_key, where="admin.session_key").reveal().strip()
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(f"admin.session_key: too short (at least {MIN_KEY_CHARS} characters)")
        return cls(admin.session_ttl, key)

    def fingerprint(self, token: bytes, grant: Grant) -> str:
        """A keyed hash of `token` and what it grants: the cookie's tie to its token."""
        given = b"\0".join((token, grant.role.encode(), (grant.tenant or "").encode()))
        return hmac.new(self._fingerprint_key, given, hashlib.sha256).hexdigest()

    def cookie(self, token: str, grant: Grant) -> tuple[str, Session]:
        """A new session of `token` and its signed cookie value."""
        session = Session(
            grant.role, secrets.token_urlsafe(24), grant.tenant, secrets.token_urlsafe(12)
        )
        value = {
            "role": grant.role,
            "csrf": session.csrf,
            "tenant": grant.tenant,
            "sid": session.id,
            "fp": self.fingerprint(token.encode(), grant),
        }
        return self._signer.dumps(value), session

    def issue(self, response: Response, request: Request, token: str, grant: Grant) -> Session:
        value, session = self.cookie(token, grant)
        self.set_cookie(response, request, value)
        return session

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        """Put the session cookie `value` (of `cookie`) on `response`."""
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.ttl),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    def read(self, request: Request, tokens: Tokens) -> Session | None:
        """The request's session, or None when it has none, a forged or expired one, one signed
        out, or one whose token is no longer configured with the same role and tenant."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            data, signed_at = self._signer.loads(
                cookie, max_age=int(self.ttl), return_timestamp=True
            )
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("role") not in ROLES:
            return None
        tenant = data.get("tenant")
        session = Session(
            data["role"],
            str(data.get("csrf", "")),
            tenant if isinstance(tenant, str) else None,
            str(data.get("sid", "")),
            signed_at.timestamp() + self.ttl,
        )
        fingerprint = data.get("fp")
        if not session.id or not isinstance(fingerprint, str):
            return None  # a cookie of an earlier version: sign in again
        with self._lock:
            if session.id in self._ended:
                return None
        grant = Grant(session.role, session.tenant)
        if not any(
            hmac.compare_digest(fingerprint, self.fingerprint(token, grant))
            for token in tokens.granting(grant)
        ):
            return None
        return session

    def end(self, response: Response, session: Session | None = None) -> None:
        """Remove the cookie, and deny `session` in this process until its cookie expires."""
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        if session is None or not session.id:
            return
        now = time.time()
        with self._lock:
            for ended, expires in list(self._ended.items()):
                if expires <= now:
                    del self._ended[ended]
            if len(self._ended) >= ENDED_KEPT:
                self._ended.pop(next(iter(self._ended)))  # bounded: the oldest sign-out goes
            self._ended[session.id] = session.expires


class LoginLimiter:
    """At most `attempts` failed sign-ins per client address within `window` seconds."""

    def __init__(self, attempts: int = 5, window: float = 60.0, clients: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.clients = clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allowed(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._failures.get(client)
            if recent is None:
                return True
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            return len(recent) < self.attempts

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.clients:
                self._failures.pop(next(iter(self._failures)))  # bounded: forget the oldest
            self._failures.setdefault(client, deque()).append(now)
