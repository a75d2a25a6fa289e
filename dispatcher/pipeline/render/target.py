"""Where a request goes, drawn from the event: `{placeholders}` in a hook's URL and headers. Pure.

Placeholders use the template syntax and paths of field mapping (`{data.order_id}`, `{id}`,
`{subject}`; `{{` and `}}` are literal braces). In a URL they may stand only in the path and
the query: scheme, host and port are fixed when the hook is loaded, so the destination guard,
pinning and TLS see the real host. Each value is percent-encoded for its place, so it never adds
a path segment, a query parameter or a fragment: everything but unreserved characters is
encoded (`/`, `?`, `#`, `&`, `=`, `%`, spaces, Unicode as UTF-8), and a value made only of dots
has them encoded too, so it cannot become a `.` or `..` segment. A header value is written as
it is, but must be ASCII. A missing or null value, or a CR, LF or NUL (or another control
character but tab, or other than ASCII) in a header value, is a `render` error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote, urlsplit

from dispatcher.config.secrets import Secret
from dispatcher.errors import RenderError
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.pipeline.render.mapping import Template, fill, parse_template

FORBIDDEN_IN_HEADERS = ("\r", "\n", "\x00")
HEADER_NOT_ASCII = "a header value must be ASCII text (put other text in the URL or body)"
# the other control characters (all of C0 but tab, and DEL), which no field value may hold
# either (RFC 9110 5.5): receivers such as Node's and Go's answer 400 to a request with one
CONTROL_IN_HEADERS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
HEADER_CONTROL = "a header value cannot hold a control character other than tab"


@dataclass(frozen=True, slots=True)
class UrlTemplate:
    """A hook URL split at load: the fixed origin, then the path and query templates."""

    origin: str  # scheme://host[:port], never templated
    path: Template
    query: Template | None  # None: no `?`
    fixed: bool  # no braces at all: the URL is sent as written


@lru_cache(maxsize=4096)
def url_template(url: str) -> UrlTemplate:
    """`url` split into its fixed origin and its path and query templates; ValueError when a
    placeholder stands outside the path and query or a template is malformed."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if "{" in origin or "}" in origin:
        raise ValueError("placeholders may stand only in the path and the query, not in the host")
    if "{" in parts.fragment or "}" in parts.fragment:
        raise ValueError("placeholders may stand only in the path and the query")
    try:
        path = parse_template(parts.path)
    except ValueError as exc:
        raise ValueError(f"in the path: {exc}") from None
    try:
        query = parse_template(parts.query) if "?" in url else None
    except ValueError as exc:
        raise ValueError(f"in the query: {exc}") from None
    return UrlTemplate(origin, path, query, fixed="{" not in url and "}" not in url)


def render_url(url: str, event: Mapping[str, Any]) -> str:
    """The URL for `event`: `url` itself when it holds no placeholder."""
    try:
        template = url_template(url)
    except ValueError as exc:
        raise RenderError(f"url: {exc}") from None
    if template.fixed:
        return url
    rendered = template.origin + _fill(template.path, event, "url", _in_url)
    if template.query is not None:
        rendered += "?" + _fill(template.query, event, "url", _in_url)
    return rendered


def render_headers(
    headers: tuple[tuple[str, str], ...], event: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """The hook's headers for `event`, each value's placeholders filled in."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if "{" not in value and "}" not in value:
            out.append((name, value))
            continue
        try:
            template = parse_template(value)
        except ValueError as exc:
            raise RenderError(f"header {name}: {exc}") from None
        out.append((name, _fill(template, event, f"header {name}", _in_header)))
    return out


def request_target(hook: Hook, event: Event) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The URL and headers `hook` sends `event` with: the hook's own objects, unchanged, when
    they hold no placeholder and no secret (so callers may cache what they build from them).

    The URL is the hook's target (secret references in it resolved at load, their values
    percent-encoded, so they hold no brace); a header whose value is a secret is sent as that
    value and never read as a template."""
    attributes: dict[str, Any] | None = None
    url = hook.target
    try:
        fixed = url_template(url).fixed
    except ValueError as exc:
        raise RenderError(f"url: {exc}") from None
    if not fixed:
        attributes = event.attributes()
        url = render_url(url, attributes)
    headers = hook.headers
    if not any(isinstance(v, Secret) or "{" in v or "}" in v for _, v in headers):
        return url, cast(tuple[tuple[str, str], ...], headers)
    attributes = attributes or event.attributes()
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if isinstance(value, Secret):
            out.append((name, value.reveal()))
        else:
            out.extend(render_headers(((name, value),), attributes))
    return url, tuple(out)


def _fill(
    template: Template, event: Mapping[str, Any], where: str, encode: Callable[[str], str]
) -> str:
    try:
        return fill(template, event, encode=encode)
    except ValueError as exc:
        raise RenderError(f"{where}: {exc}") from None


def _in_url(text: str) -> str:
    if text and text.strip(".") == "":
        return "%2E" * len(text)
    return quote(text, safe="", encoding="utf-8", errors="strict")


def _in_header(text: str) -> str:
    if any(ch in text for ch in FORBIDDEN_IN_HEADERS):
        raise ValueError("a header value cannot hold CR, LF or NUL")
    if not text.isascii():
        raise ValueError(HEADER_NOT_ASCII)
    if CONTROL_IN_HEADERS.search(text):
        raise ValueError(HEADER_CONTROL)
    return text
