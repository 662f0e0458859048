"""Fault injection: scripted misbehaviour per method and path.

A ``Fault`` says how one response goes wrong: another status (503, 429 with Retry-After,
...), added latency, a malformed body, or a connection that breaks before or during the
response. ``Faults`` holds the rules: ``script`` queues faults used once each, in order (two
503s, then normal answers); ``always`` applies a fault to every matching request until
``clear``.

Invariants: a fault whose ``execute`` is False answers before the platform does anything
(nothing changes, no idempotency key is used); one whose ``execute`` is True lets the
platform handle the request first, then shapes or breaks the answer, so a retry with the same
Idempotency-Key gets the original response replayed. Path patterns match segment by
segment; ``*`` or a ``{name}`` segment matches any one segment, and the method ``*`` matches
every method.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from kneo_client.testing._reply import Delivery
from kneo_client.testing._wire import retry_after_value

__all__ = ["Fault", "Faults"]

# A body that starts as JSON and stops mid-token: every JSON parser rejects it.
MALFORMED_JSON = b'{"error": {"code": "internal_error", "message": "tru'

_ERROR_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
    502: "unavailable",
    504: "unavailable",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One way a response goes wrong. Build one with the class methods.

    Attributes:
        status: The status to answer with, or None to keep the platform's own.
        code: The error code of the injected ``ErrorResponse`` (by default the usual one
            for ``status``).
        message: The message of the injected ``ErrorResponse``.
        headers: Extra response headers, e.g. ``Retry-After``.
        body: A raw body that replaces the response's, e.g. malformed JSON.
        delay: Seconds the server waits before answering.
        delivery: How the server delivers the response (or breaks the connection).
        execute: Whether the platform handles the request before the fault applies.
    """

    status: int | None = None
    code: str | None = None
    message: str = "injected fault"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    delay: float = 0.0
    delivery: Delivery = Delivery.NORMAL
    execute: bool = False

    @property
    def error_code(self) -> str:
        """The code of the injected error body."""
        if self.code is not None:
            return self.code
        return _ERROR_CODES.get(self.status or 500, "internal_error")

    @classmethod
    def error(
        cls, status: int = 503, code: str | None = None, *, retry_after: float | None = None
    ) -> Fault:
        """Answer ``status`` with the spec's error body, without handling the request."""
        headers = () if retry_after is None else (("Retry-After", retry_after_value(retry_after)),)
        return cls(status=status, code=code, headers=headers)

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> Fault:
        """Answer 429 ``rate_limited`` with ``Retry-After``."""
        return cls.error(429, retry_after=retry_after)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Handle the request normally, but answer ``seconds`` late.

        While the answer is held back, a repeat of a POST with the same Idempotency-Key gets
        409 ``idempotency_key_in_progress``.
        """
        return cls(delay=seconds, execute=True)

    @classmethod
    def lost_response(cls, status: int = 503) -> Fault:
        """Handle the request, then answer ``status`` as if the real answer had been lost."""
        return cls(status=status, execute=True, message="the response was lost")

    @classmethod
    def reset_before_response(cls, *, executed: bool = False) -> Fault:
        """Reset the connection before any response byte; ``executed``: handle it first."""
        return cls(delivery=Delivery.RESET_BEFORE_RESPONSE, execute=executed)

    @classmethod
    def reset_mid_body(cls) -> Fault:
        """Handle the request, send the headers and part of the body, then reset."""
        return cls(delivery=Delivery.RESET_MID_BODY, execute=True)

    @classmethod
    def truncated_body(cls) -> Fault:
        """Handle the request, then send a body shorter than its Content-Length and close."""
        return cls(delivery=Delivery.TRUNCATED_BODY, execute=True)

    @classmethod
    def malformed_json(cls, status: int | None = None) -> Fault:
        """Handle the request, then answer with a body that is not valid JSON."""
        return cls(status=status, body=MALFORMED_JSON, execute=True)


def _matches(pattern: str, path: str) -> bool:
    wanted = pattern.strip("/").split("/")
    actual = path.strip("/").split("/")
    if len(wanted) != len(actual):
        return False
    return all(
        w == a or w == "*" or (w.startswith("{") and w.endswith("}"))
        for w, a in zip(wanted, actual, strict=True)
    )


@dataclass
class _Rule:
    method: str
    pattern: str
    queue: deque[Fault] = field(default_factory=deque)
    persistent: Fault | None = None

    def applies(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and _matches(self.pattern, path)


class Faults:
    """The emulator's fault rules; reach it as ``emulator.faults``.

    Example::

        emulator.faults.script("POST", "/v1/runs", Fault.error(503), Fault.error(503))
        emulator.faults.always("GET", "/v1/runs/{run_id}", Fault.latency(0.5))
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    def script(self, method: str, path: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next matching requests, one fault per request.

        Args:
            method: The HTTP method, or ``*`` for any.
            path: The path pattern, e.g. ``/v1/runs/*`` or ``/v1/runs/{run_id}``.
            *faults: Used in order; once they are used up, requests are answered normally.
        """
        with self._lock:
            self._rules.append(_Rule(method.upper(), path, deque(faults)))

    def always(self, method: str, path: str, fault: Fault) -> None:
        """Apply ``fault`` to every matching request until ``clear``."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), path, persistent=fault))

    def clear(self) -> None:
        """Remove every rule, scripted and persistent."""
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        """Return how many scripted faults are not used yet."""
        with self._lock:
            return sum(len(rule.queue) for rule in self._rules)

    def take(self, method: str, path: str) -> Fault | None:
        """Return the fault for this request (using up a scripted one), or None.

        Scripted faults come first, in the order their rules were added; then the first
        persistent rule that matches.
        """
        with self._lock:
            for rule in self._rules:
                if rule.queue and rule.applies(method, path):
                    return rule.queue.popleft()
            for rule in self._rules:
                if rule.persistent is not None and rule.applies(method, path):
                    return rule.persistent
        return None
