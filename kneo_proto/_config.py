"""What every call of one client shares: where to send, how to authenticate, what to allow.

Invariants: a ``ClientConfig`` is checked once, when built, and never changes. Its base URL
is absolute http(s) with a host and no user info, query or fragment. The API key goes over
plain http only to a loopback host (127.0.0.0/8, ::1, localhost) unless the configuration
explicitly allows it. Nothing here shows the key in a ``repr``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from kneo_proto._auth import ApiKeyAuth, AuthScheme
from kneo_proto._errors import KneoConfigurationError, KneoInsecureTransportError
from kneo_proto._events import Observer
from kneo_proto._headers import check_header_name, check_header_value
from kneo_proto._proxy import Proxy
from kneo_proto._redact import redact_headers
from kneo_proto._retry import RetryPolicy
from kneo_proto._version import __version__

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "USER_AGENT",
    "CallOptions",
    "ClientConfig",
    "Clock",
    "check_keepalive_expiry",
    "is_loopback_host",
    "normalize_base_url",
    "parse_base_url",
]

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle pooled connection is kept (httpx's default). Load balancers drop idle
connections after tens of seconds, so a client idle for longer opens a fresh one."""
USER_AGENT = (
    f"kneo-client/{__version__} Python/{sys.version_info.major}.{sys.version_info.minor}."
    f"{sys.version_info.micro}"
)


@dataclass(frozen=True, slots=True)
class Clock:
    """The two clocks a state machine reads, handed in by its driver.

    Attributes:
        monotonic: Seconds on a clock that never jumps; all durations and deadlines use it.
        wall: POSIX seconds; used only to turn an HTTP-date ``Retry-After`` into a duration.
    """

    monotonic: Callable[[], float]
    wall: Callable[[], float]


def check_keepalive_expiry(seconds: float | None) -> None:
    """Raise ``KneoConfigurationError`` unless ``seconds`` is None or finite and > 0."""
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise KneoConfigurationError(
            f"keepalive_expiry must be a number of seconds or None, not {type(seconds).__name__}"
        )
    if not (math.isfinite(seconds) and seconds > 0):
        raise KneoConfigurationError(
            f"keepalive_expiry must be a finite number of seconds > 0 (or None to keep idle "
            f"connections as long as they last), not {seconds!r}"
        )


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost``, ``*.localhost``, 127.0.0.0/8 and ::1 (no lookups)."""
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    import ipaddress  # only here: most clients never need it, and it is slow to import

    try:
        return ipaddress.ip_address(lowered.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_base_url(url: str) -> SplitResult:
    """Check that ``url`` can serve as a base URL and return it split.

    Raises:
        KneoConfigurationError: for a relative URL, a scheme other than http(s), a missing
            host, user info, a query or a fragment.
    """
    if not isinstance(url, str) or not url:
        raise KneoConfigurationError("base URL is empty")
    # urlsplit silently drops tabs and line breaks, so the host checked here could differ
    # from the one a driver connects to; refuse them (and inner spaces) outright.
    if any(ch.isspace() or not ch.isprintable() for ch in url.strip()):
        raise KneoConfigurationError("base URL contains whitespace or a control character")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise KneoConfigurationError(f"base URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KneoConfigurationError(
            "base URL must be absolute http:// or https:// with a host, e.g. https://kneo.example.com"
        )
    if "@" in parts.netloc:
        raise KneoConfigurationError("base URL must not contain user info; use the API key")
    if parts.query or parts.fragment:
        raise KneoConfigurationError("base URL must not have a query or fragment")
    del port
    return parts


def normalize_base_url(url: str) -> tuple[str, str | None]:
    """``url`` as requests are built on it, and a note for the user when it was changed.

    Every endpoint path starts with ``/v1`` (``/v1/runs``): a base URL ending in ``/v1``
    would send ``/v1/v1/runs``, which the platform answers with 404. That trailing ``/v1``
    is dropped (a gateway prefix before it stays: ``https://gw/kneo/v1`` -> ``https://gw/kneo``).
    """
    base = url.strip().rstrip("/")
    path = urlsplit(base).path
    if not (path == "/v1" or path.endswith("/v1")):
        return base, None
    fixed = base.removesuffix("/v1")
    return fixed, (
        f"base URL {base} ends in /v1, which every request path already starts with "
        f"(requests would go to /v1/v1/... and get 404): using {fixed} instead. Drop /v1 "
        "from the profile's url (or KNEO_URL) to silence this warning"
    )


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call overrides; a field left as None keeps the client's setting.

    Attributes:
        timeout: Seconds allowed for each phase of each attempt (connect, write, read,
            pool wait).
        deadline: Seconds the whole call may take, attempts and sleeps included.
        retry_policy: The retry policy for this call.
        headers: Extra headers. Auth, ``Idempotency-Key`` and ``X-Request-ID`` always win.
        request_id: The ``X-Request-ID`` to send instead of a generated one.
        observers: Who sees the call's events (``kneo_proto._events``); replaces, not adds
            to, the client's.
    """

    timeout: float | None = None
    deadline: float | None = None
    retry_policy: RetryPolicy | None = None
    headers: Mapping[str, str] | None = None
    request_id: str | None = None
    observers: tuple[Observer, ...] | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise KneoConfigurationError(
                f"timeout must be a finite number of seconds > 0, not {self.timeout!r}"
            )
        if self.deadline is not None and not (math.isfinite(self.deadline) and self.deadline >= 0):
            raise KneoConfigurationError(
                f"deadline must be a finite number of seconds >= 0, not {self.deadline!r}"
            )
        for key, value in (self.headers or {}).items():
            check_header_name(key)
            check_header_value(key, value)

    def __repr__(self) -> str:
        headers = None if self.headers is None else redact_headers(self.headers)
        return (
            f"CallOptions(timeout={self.timeout!r}, deadline={self.deadline!r}, "
            f"retry_policy={self.retry_policy!r}, headers={headers!r}, "
            f"request_id={self.request_id!r}, observers={self.observers!r})"
        )

    def merged(self, other: CallOptions) -> CallOptions:
        """Return these options with every field ``other`` sets taking precedence."""
        headers = {**(self.headers or {}), **(other.headers or {})} or None
        return CallOptions(
            timeout=other.timeout if other.timeout is not None else self.timeout,
            deadline=other.deadline if other.deadline is not None else self.deadline,
            retry_policy=other.retry_policy or self.retry_policy,
            headers=headers,
            request_id=other.request_id or self.request_id,
            observers=self.observers if other.observers is None else other.observers,
        )


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the calls of one client share.

    Attributes:
        base_url: The platform's base URL, e.g. ``https://kneo.example.com``.
        api_key: The API key, or None for unauthenticated use (health probes, tests).
        auth_scheme: Which header carries the key.
        timeout: Default seconds for each phase of each attempt.
        retry_policy: Default retry policy.
        max_response_bytes: Largest response body accepted.
        allow_insecure_http: Allow sending the key over plain http to a non-loopback host.
        user_agent: The ``User-Agent`` header.
        strict_responses: Validate every 2xx body against ``spec/`` in full (every field the
            spec requires present, no ``null``), instead of the tolerant default (ADR 0011).
        proxy: The proxy every request goes through (None: direct), as planned by
            ``plan_proxy``; named in proxy errors. Plain http through a proxy reached in clear
            on another host counts as sending the key in clear.
    """

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    auth_scheme: AuthScheme = AuthScheme.BEARER
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    allow_insecure_http: bool = False
    user_agent: str = USER_AGENT
    strict_responses: bool = False
    proxy: Proxy | None = None
    auth: ApiKeyAuth | None = field(init=False, repr=False, compare=False)
    origin: str = field(init=False, repr=False, compare=False)
    sends_key_in_clear: bool = field(init=False, repr=False, compare=False)
    """True when the key goes over plain http to a non-loopback host (explicitly allowed)."""
    base_url_note: str | None = field(init=False, repr=False, compare=False)
    """Why ``base_url`` differs from the URL given (a trailing ``/v1`` dropped), else None;
    the client logs it once as a warning."""
    server: tuple[str, int] = field(init=False, repr=False, compare=False)
    """The platform's host and port (the scheme's default port when the URL names none)."""

    def __post_init__(self) -> None:
        parts = parse_base_url(self.base_url)
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise KneoConfigurationError(
                f"timeout must be a finite number of seconds > 0, not {self.timeout!r}"
            )
        if self.max_response_bytes < 1:
            raise KneoConfigurationError("max_response_bytes must be at least 1")
        auth = None if self.api_key is None else ApiKeyAuth(self.api_key, self.auth_scheme)
        insecure = parts.scheme == "http" and not is_loopback_host(parts.hostname or "")
        via = _proxy_in_clear(self.proxy) if parts.scheme == "http" else ""
        insecure = insecure or bool(via)
        if auth is not None and insecure and not self.allow_insecure_http:
            raise KneoInsecureTransportError(
                f"refusing to send the API key over plain http to {parts.hostname}{via}; use an "
                "https:// URL, or pass allow_insecure_http=True if a TLS-terminating proxy "
                "on a private network sits in between"
            )
        check_header_value("User-Agent", self.user_agent)
        object.__setattr__(self, "sends_key_in_clear", auth is not None and insecure)
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "origin", f"{parts.scheme}://{parts.netloc}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        object.__setattr__(self, "server", (parts.hostname or "", port))
        base_url, note = normalize_base_url(self.base_url)
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "base_url_note", note)


def _proxy_in_clear(proxy: Proxy | None) -> str:
    """How the key would leave the machine in clear through ``proxy`` (http or SOCKS to
    another host; https to the proxy is encrypted), or "" when it would not.
    """
    if proxy is None or proxy.scheme == "https" or is_loopback_host(proxy.host):
        return ""
    return f" through the proxy {proxy}"
