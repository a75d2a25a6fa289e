"""Undo a response's Content-Encoding without ever producing more than the caller has room for.

A few kilobytes of gzip can stand for gigabytes: httpx inflates each chunk it receives in full,
so a capped read of a compressed body could still allocate hundreds of megabytes at once.
`Inflater` takes the room left under the cap with every chunk and stops there. It decodes
what httpx decodes (gzip and deflate, zlib-wrapped or raw) and, like httpx, passes bodies in
other codings through as they are; a body in more than one coding is refused.
"""

from __future__ import annotations

import zlib

import httpx


def _zlib_wrapped(head: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (RFC 1950), as it should; some
    servers send raw deflate (RFC 1951) instead, which httpx accepts too."""
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


class Inflater:
    """The decoded bytes of a body, chunk by chunk, each call bounded by `room`."""

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        known = [c for c in codings if c in ("gzip", "deflate")]
        if len(known) > 1:
            raise httpx.DecodingError(
                f"Content-Encoding {content_encoding!r}: more than one coding is not supported"
            )
        self.coding = known[0] if known else None
        gzip = self.coding == "gzip"
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None
        self._head = b""  # the first bytes of a deflate body, until its wrapper is known

    @property
    def finished(self) -> bool:
        """Whether the coded body has ended (anything after it is not part of the body)."""
        return self._zlib is not None and self._zlib.eof

    def feed(self, data: bytes, room: int) -> bytes:
        """At most `room` decoded bytes from `data` (the rest is not wanted by the caller)."""
        if room <= 0:
            return b""  # zlib reads a max_length of 0 as no limit at all
        if self.coding is None:
            return data[:room]
        if self._zlib is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            wbits = zlib.MAX_WBITS if _zlib_wrapped(data) else -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(wbits)
        try:
            return self._zlib.decompress(data, room)
        except zlib.error as exc:
            raise httpx.DecodingError(f"{self.coding} body cannot be decoded: {exc}") from None
