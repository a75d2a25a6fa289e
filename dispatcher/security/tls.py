"""The SSL contexts of a hook's connections: server verification and, for `mtls`, the client cert.

To the hook's API (`ssl_context_for`): verification is on by default against the public roots
httpx uses (certifi); a CA bundle given as the hook's `tls.ca` or the mtls `ca` replaces them (a
private CA pins the server to it); `tls.verify: false` turns verification off, only when written
so.

To its OAuth2 token endpoint (`token_context_for`): another server, most often a public identity
provider, and the one that receives the long-lived client secret. It is always verified, chain
and host name, whatever `tls.verify` says, against the public roots and the hook's `tls.ca`
together (a private CA for the API must not make a public token endpoint unreachable, nor may a
token endpoint of that private CA be refused), and is shown no client certificate. An OAuth2
hook has no mtls `ca` (its `auth` is the OAuth2 one), so `tls.ca` is the only bundle it adds.
"""

from __future__ import annotations

import ssl

import certifi

from dispatcher.config.secrets import Secret
from dispatcher.errors import ConfigError
from dispatcher.model.hook import Hook


def ssl_context_for(hook: Hook) -> ssl.SSLContext:
    """A fresh client-side SSL context for `hook`'s API; `ConfigError` naming the file that
    fails."""
    auth = hook.auth
    mtls = auth.type == "mtls"
    where = f"hook {hook.id}"
    context = _verifying(_own_bundles(hook) or [certifi.where()], where)
    if not hook.tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if mtls:
        _load_client_cert(context, auth.get("cert"), auth.get("key"), auth.get("password"), where)
    return context


def token_context_for(hook: Hook) -> ssl.SSLContext:
    """A fresh client-side SSL context for `hook`'s OAuth2 token endpoint: always verifying,
    trusting the public roots and the hook's own CA bundles, no client certificate."""
    return _verifying([certifi.where(), *_own_bundles(hook)], f"hook {hook.id}")


def _own_bundles(hook: Hook) -> list[str]:
    """The CA bundles `hook` names: its `tls.ca`, and the mtls `ca` of an mtls hook."""
    auth = hook.auth
    mtls_ca = auth.get("ca") if auth.type == "mtls" else None
    return [path for path in (hook.tls.ca, mtls_ca) if path]


def _verifying(bundles: list[str], where: str) -> ssl.SSLContext:
    """A client-side context verifying chain and host name against `bundles`, TLS 1.2 at least."""
    try:
        context = ssl.create_default_context(cafile=bundles[0])
        for extra in bundles[1:]:
            context.load_verify_locations(cafile=extra)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}: tls.ca: cannot load CA bundle: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_client_cert(
    context: ssl.SSLContext, cert: object, key: object, password: object, where: str
) -> None:
    """Load the client certificate chain and key; the error names the files, never the key."""
    if not isinstance(cert, str) or not cert:
        raise ConfigError(f"{where}: auth.cert: required for auth type mtls")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{where}: auth.key: must be a file path")
    secret = password.reveal() if isinstance(password, Secret) else password
    if secret is not None and not isinstance(secret, str):
        raise ConfigError(f"{where}: auth.password: must be a string")
    try:
        context.load_cert_chain(
            certfile=cert, keyfile=key or None, password=_not_given if secret is None else secret
        )
    except _NoPassword:
        raise ConfigError(
            f"{where}: auth.key: the private key is encrypted, and no password is given"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{where}: auth.cert/auth.key: cannot load client certificate: {_reason(exc)}"
        ) from None


class _NoPassword(Exception):
    """Raised when an encrypted key is loaded and no password was given."""


def _not_given() -> str:
    """The password callback when none is given. Without one, OpenSSL asks for the password on
    the terminal: a worker or `hooks test --send` started by hand would wait there for good."""
    raise _NoPassword


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a PEM certificate or key"
    return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
