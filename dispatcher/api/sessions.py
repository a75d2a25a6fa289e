"""The console's sessions: a signed, expiring cookie that carries the role and a CSRF token, and
a limit on sign-in attempts.

The cookie is HttpOnly and SameSite=Strict (Secure when the request came over https); it holds
no token, only the role (and tenant) it was exchanged for, signed with `admin.session_key`, or
else with a key made when the process starts (a restart then signs everyone out). Every form carries the session's CSRF token, compared in
constant time before any change.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dispatcher.api.auth import Grant, Principal
from dispatcher.config.secrets import resolve
from dispatcher.config.settings import ROLES, Admin, Role
from dispatcher.errors import ConfigError

COOKIE = "dugaa_session"
MIN_KEY_CHARS = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console user: the role, the CSRF token its forms carry, and the tenant its
    token is limited to."""

    role: Role
    csrf: str
    tenant: str | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.role, "session", self.tenant)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """Issues and reads session cookies."""

    def __init__(self, ttl: float, key: str | None = None) -> None:
        self.ttl = ttl
        self._signer = URLSafeTimedSerializer(key or secrets.token_urlsafe(32), salt="session")

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

    def issue(self, response: Response, request: Request, grant: Grant) -> Session:
        session = Session(grant.role, secrets.token_urlsafe(24), grant.tenant)
        response.set_cookie(
            COOKIE,
            self._signer.dumps({"role": grant.role, "csrf": session.csrf, "tenant": grant.tenant}),
            max_age=int(self.ttl),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return session

    def read(self, request: Request) -> Session | None:
        """The request's session, or None when it has none, a forged one, or an expired one."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self.ttl))
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("role") not in ROLES:
            return None
        tenant = data.get("tenant")
        return Session(
            data["role"], str(data.get("csrf", "")), tenant if isinstance(tenant, str) else None
        )

    @staticmethod
    def end(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


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
