"""kneo-client's log lines, written from the core's events to ``kneo_client.transport``.

INFO: a retry (method, route, what failed, attempt n of m, the delay, the request ID) and a
failed call. DEBUG adds every attempt (with the full URL, query included), every response
and every finished call. No line holds a header value, the API key or a proxy credential:
events carry none.
"""

from __future__ import annotations

import logging

from kneo_proto import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    Event,
    FailureKind,
    ResponseReceived,
    RetryScheduled,
)

__all__ = ["log_event"]

logger = logging.getLogger("kneo_client.transport")


def log_event(event: Event) -> None:
    """Write ``event`` as one line when the logger takes its level."""
    call = event.call
    if isinstance(event, RetryScheduled):
        if logger.isEnabledFor(logging.INFO):
            cause = event.cause.value if isinstance(event.cause, FailureKind) else event.cause
            logger.info(
                "%s %s -> %s; retrying in %.3f s (attempt %d of %d) request_id=%s",
                call.method,
                call.route,
                cause,
                event.delay,
                event.attempt,
                call.max_attempts,
                call.request_id,
            )
    elif isinstance(event, CallFailed):
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s %s failed after %d attempt(s) in %.3f s: %s: %s request_id=%s",
                call.method,
                call.route,
                event.attempts,
                event.elapsed,
                type(event.error).__name__,
                event.error.message,
                call.request_id,
            )
    elif logger.isEnabledFor(logging.DEBUG):
        _debug(event)


def _debug(event: Event) -> None:
    call = event.call
    if isinstance(event, AttemptStarted):
        logger.debug(
            "%s %s attempt %d of %d (timeout %.3g s) request_id=%s",
            call.method,
            call.url,
            event.attempt,
            call.max_attempts,
            event.timeout,
            call.request_id,
        )
    elif isinstance(event, ResponseReceived):
        logger.debug(
            "%s %s -> %d in %.1f ms (attempt %d) request_id=%s",
            call.method,
            call.url,
            event.status,
            event.duration * 1000,
            event.attempt,
            call.request_id,
        )
    elif isinstance(event, AttemptFailed):
        phase = "" if event.phase is None else f" ({event.phase.value} phase)"
        logger.debug(
            "%s %s -> %s%s after %.1f ms (attempt %d) request_id=%s",
            call.method,
            call.url,
            event.failure.value,
            phase,
            event.duration * 1000,
            event.attempt,
            call.request_id,
        )
    elif isinstance(event, CallFinished):
        logger.debug(
            "%s %s finished: %d after %d attempt(s) in %.3f s request_id=%s",
            call.method,
            call.route,
            event.status,
            event.attempts,
            event.elapsed,
            event.request_id,
        )
