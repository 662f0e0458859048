"""Request and Response: the plain values that cross the line between the core and a driver.

Invariants: both are immutable. Header names are kept as given and looked up
case-insensitively. A ``Request``'s ``repr`` never shows a credential header's value, so a
request can be logged or put in an error without leaking the API key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

from kneo_proto._redact import REDACTED, is_sensitive_header

__all__ = [
    "MAX_RETURNED_REQUEST_ID",
    "HeaderPairs",
    "Request",
    "Response",
    "header_value",
    "normalize_headers",
    "returned_request_id",
]

HeaderPairs = tuple[tuple[str, str], ...]

MAX_RETURNED_REQUEST_ID = 256


def normalize_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> HeaderPairs:
    """Return ``headers`` as a tuple of ``(str, str)`` pairs, decoding bytes as Latin-1.

    Latin-1 maps every byte to one code point, so nothing a server sends can fail to decode.
    """
    return tuple(
        (
            name.decode("latin-1") if isinstance(name, bytes) else name,
            value.decode("latin-1") if isinstance(value, bytes) else value,
        )
        for name, value in headers
    )


def header_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """Return the first value of header ``name`` (case-insensitive), or None when absent."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def _redacted_pairs(headers: HeaderPairs) -> HeaderPairs:
    # Pair by pair, not through a dict: a repeated header must stay visible in a log.
    return tuple((name, REDACTED if is_sensitive_header(name) else v) for name, v in headers)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request exactly as a driver must send it.

    Attributes:
        method: The HTTP method, upper case.
        url: The absolute URL, already quoted (scheme, host, port, path and query).
        headers: Header pairs to send as given, ``Content-Length`` included (for any body and
            for every POST, PUT and PATCH); only ``Host`` is left to the HTTP layer.
        body: The request body; empty for bodiless requests.
    """

    method: str
    url: str
    headers: HeaderPairs
    body: bytes = b""

    @property
    def target(self) -> str:
        """The request target (path and query) of ``url``, as a server sees it."""
        after_scheme = self.url.split("://", 1)[-1]
        slash = after_scheme.find("/")
        return "/" if slash < 0 else after_scheme[slash:]

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)

    def __repr__(self) -> str:
        shown = _redacted_pairs(self.headers)
        return (
            f"Request(method={self.method!r}, url={self.url!r}, headers={shown!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class Response:
    """One complete HTTP response as a driver received it.

    Attributes:
        status: The status code.
        headers: Header pairs as received.
        body: The whole body.
    """

    status: int
    headers: HeaderPairs = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)

    def __repr__(self) -> str:
        shown = _redacted_pairs(self.headers)
        return f"Response(status={self.status}, headers={shown!r}, body=<{len(self.body)} bytes>)"


@overload
def returned_request_id(response: Response, sent: str) -> str: ...
@overload
def returned_request_id(response: Response, sent: str | None) -> str | None: ...
def returned_request_id(response: Response, sent: str | None) -> str | None:
    """The ``X-Request-ID`` ``response`` carries when it can serve as one, else ``sent``.

    Gateways and load balancers set IDs in formats of their own, and any is taken. A value
    that is empty, over ``MAX_RETURNED_REQUEST_ID`` characters, or holds anything but
    printable ASCII is no ID: it would flood or forge the messages and logs that show it, so
    the ID sent stays.
    """
    value = response.header("x-request-id")
    if value is None:
        return sent
    value = value.strip()
    if value and len(value) <= MAX_RETURNED_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return sent
