"""API-key authentication: which header carries the key, and what a usable key is.

Invariants: a key is checked once, when it is configured; the check's error says what is
wrong with it but never shows it. ``ApiKeyAuth``'s ``repr`` hides the key.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from typing import Any, TypeVar

from kneo_proto._errors import KneoConfigurationError

__all__ = ["ApiKeyAuth", "AuthScheme", "normalize_api_key"]


class AuthScheme(enum.StrEnum):
    """How the API key is presented to the platform."""

    BEARER = "bearer"
    """``Authorization: Bearer <key>``."""
    KNEO_API_KEY = "kneo_api_key"
    """``X-Kneo-Api-Key: <key>``."""

    def __str__(self) -> str:
        return self.value


def normalize_api_key(api_key: str) -> str:
    """Return ``api_key`` without surrounding whitespace, or raise if it cannot be sent.

    Surrounding spaces, tabs and line breaks are removed (keys read from files often end in
    a newline). What remains must be non-empty visible ASCII with no inner whitespace.

    Raises:
        KneoConfigurationError: naming the problem, never the key.
    """
    if not isinstance(api_key, str):
        raise KneoConfigurationError(f"API key must be a string, not {type(api_key).__name__}")
    key = api_key.strip(" \t\r\n")
    if not key:
        raise KneoConfigurationError("API key is empty")
    if not key.isascii():
        raise KneoConfigurationError("API key contains a non-ASCII character")
    if not key.isprintable() or any(ch.isspace() for ch in key):
        raise KneoConfigurationError("API key contains whitespace or a control character")
    return key


_T = TypeVar("_T")


class ApiKeyAuth:
    """Adds the API key header to outgoing requests.

    The instance is also callable on any request object with a mutable ``headers`` mapping,
    which is the shape httpx accepts as a function auth, so it can be passed as ``auth=`` to
    an httpx client.

    Args:
        api_key: Non-empty API key.
        scheme: Which header carries it.

    Raises:
        ValueError: (a ``KneoConfigurationError``) if the key is empty or not sendable.
    """

    __slots__ = ("_key", "scheme")

    def __init__(self, api_key: str, scheme: AuthScheme = AuthScheme.BEARER) -> None:
        self._key = normalize_api_key(api_key)
        self.scheme = AuthScheme(scheme)

    @property
    def secret(self) -> str:
        """The key itself, for masking it; never log or display this."""
        return self._key

    def header(self) -> tuple[str, str]:
        """Return the ``(name, value)`` header pair that carries the key."""
        if self.scheme is AuthScheme.BEARER:
            return ("Authorization", f"Bearer {self._key}")
        return ("X-Kneo-Api-Key", self._key)

    def __call__(self, request: _T) -> _T:
        """Set the key header on ``request`` (an httpx-style request) and return it."""
        name, value = self.header()
        request.headers[name] = value  # type: ignore[attr-defined]
        return request

    def auth_flow(self, request: _T) -> Generator[_T, Any, None]:
        """Set the key header on ``request`` and yield it once (the httpx auth-flow shape)."""
        yield self(request)

    def __repr__(self) -> str:
        return f"ApiKeyAuth(api_key=<redacted>, scheme={self.scheme.value!r})"
