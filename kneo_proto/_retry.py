"""When to retry and how long to wait: ``RetryPolicy``, ``Retry-After`` and classification.

Invariants: a retry is only ever decided here. A request that may have reached the server is
retried only when repeating it is safe: an idempotent method (RFC 9110 section 9.2.2) or a
POST carrying an ``Idempotency-Key``. A failure before any byte was sent is safe for every
method. Delays never undercut a valid ``Retry-After``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from kneo_proto._actions import FailureKind
from kneo_proto._dates import parse_http_date

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUS_CODES",
    "RETRY_AFTER_STATUS_CODES",
    "RetryPolicy",
    "parse_retry_after",
    "retry_is_safe",
    "status_is_retryable",
]

# The contract: intentionally not configurable.
RETRYABLE_STATUS_CODES = frozenset({429, 502, 503, 504})
# RFC 9110 section 10.2.3 gives Retry-After meaning on 503 and 3xx; 429 adds it (RFC 6585).
RETRY_AFTER_STATUS_CODES = frozenset({429, 503})
# RFC 9110 section 9.2.2; the contract lists these as the idempotent verbs.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_PRE_SEND_KINDS = frozenset({FailureKind.CONNECT, FailureKind.CONNECT_TIMEOUT})
_RETRYABLE_KINDS = frozenset(
    {FailureKind.TIMEOUT, FailureKind.NETWORK, FailureKind.PROTOCOL} | _PRE_SEND_KINDS
)

_RETRY_AFTER_CEILING = 10**9

# A private generator drawing from the OS (os.urandom): user code calling random.seed()
# cannot synchronise clients' jitter, and processes forked from one parent (a pre-forking
# server) do not inherit one state and retry in lockstep, as copies of a random.Random would.
_JITTER_RANDOM = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait between attempts. Pure configuration; it does no I/O.

    Attributes:
        max_attempts: Total attempts including the first try; 1 disables retries.
        base_delay: Seconds before the second attempt; each later attempt doubles it.
        max_delay: Cap on the computed delay before jitter.
        jitter: Fraction of the delay randomised, in [0, 1]: with 0.1 a 1 s delay becomes a
            uniform draw from [0.9, 1.1].
        max_retry_after: The longest ``Retry-After`` kneo-client waits for; a longer one
            fails the call at once with ``retry_after`` set, so the caller can reschedule.
    """

    max_attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 30.0
    jitter: float = 0.1
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        # Validation errors are ValueErrors so the dataclass stays importable without errors.
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter must be within [0, 1]")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0")

    def delay_for(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        rng: random.Random | None = None,
    ) -> float:
        """Return the seconds to sleep before ``attempt`` (1-indexed; attempt 1 gets 0).

        Args:
            attempt: The upcoming attempt number, starting at 2 for the first retry.
            retry_after: A server hint from ``Retry-After``; returned verbatim (no jitter).
            rng: The random generator for jitter; a private one by default.
        """
        if retry_after is not None:
            return max(retry_after, 0.0)
        if attempt <= 1:
            return 0.0
        # 2 ** 64 already exceeds any max_delay; clamping the exponent avoids OverflowError.
        exponent = min(attempt - 2, 64)
        delay = min(self.base_delay * (2.0**exponent), self.max_delay)
        spread = delay * self.jitter
        return (rng or _JITTER_RANDOM).uniform(delay - spread, delay + spread)


def status_is_retryable(status: int) -> bool:
    """Return True when a response with ``status`` may be retried (method rules aside)."""
    return status in RETRYABLE_STATUS_CODES


def retry_is_safe(method: str, *, keyed: bool, failure: FailureKind | None = None) -> bool:
    """Return True when repeating the request cannot cause a second side effect.

    Args:
        method: The request's HTTP method.
        keyed: Whether the request carries an ``Idempotency-Key``.
        failure: The transport failure kind, or None for a received response.
    """
    if failure is not None:
        if failure not in _RETRYABLE_KINDS:
            return False
        if failure in _PRE_SEND_KINDS:
            return True
    return method in IDEMPOTENT_METHODS or (method == "POST" and keyed)


def parse_retry_after(value: str | None, *, wall_now: float) -> float | None:
    """Parse a ``Retry-After`` value into seconds from now, or None when it is not valid.

    Accepts delay-seconds (a non-negative integer, RFC 9110 section 10.2.3) and an HTTP-date,
    which is turned into a duration against ``wall_now`` (POSIX seconds) and floored at 0.
    Anything else (negative, fractional, signed, non-ASCII digits, empty) is invalid.

    Args:
        value: The header's value, or None when absent.
        wall_now: The current wall-clock time, used only for HTTP-dates.
    """
    if value is None:
        return None
    text = value.strip(" \t")
    if text.isascii() and text.isdigit():
        # Bound huge values without building a huge int: past 10**9 s is "much later".
        digits = text.lstrip("0") or "0"
        return (
            float(min(int(digits), _RETRY_AFTER_CEILING))
            if len(digits) <= 12
            else float(_RETRY_AFTER_CEILING)
        )
    when = parse_http_date(text)
    if when is None:
        return None
    return max(when - wall_now, 0.0)
