"""An HTTP request as a plain value: what the request stage builds and credentials add to."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.model.values import quick_init

Header = tuple[str, str]


@quick_init
@dataclass(frozen=True, slots=True)
class Request:
    """One request to send: method, absolute URL, headers in order, the whole body.

    No credentials until a hook's own credentials add them (`with_headers`, `with_url`) just
    before sending; what `hooks test` shows is this value, masked.
    """

    method: str
    url: str
    headers: tuple[Header, ...]
    content: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def with_headers(self, *headers: Header) -> Request:
        """This request with `headers` set, replacing any of the same names."""
        names = {name.lower() for name, _ in headers}
        kept = tuple(h for h in self.headers if h[0].lower() not in names)
        return Request(self.method, self.url, kept + headers, self.content)

    def with_url(self, url: str) -> Request:
        return Request(self.method, url, self.headers, self.content)
