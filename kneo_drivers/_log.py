"""One DEBUG line per attempt, under ``kneo_client.transport``, headers redacted."""

from __future__ import annotations

import logging
from typing import Any

from kneo_proto import Call, Send, redact_headers

__all__ = ["log_attempt"]

logger = logging.getLogger("kneo_client.transport")


def log_attempt(call: Call[Any], send: Send, outcome: object) -> None:
    """Log how attempt ``send`` ended (a status or a failure kind) and the next delay."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    delay = call.pending_sleep
    logger.debug(
        "%s %s -> %s attempt=%d retry_in=%s request_id=%s headers=%s",
        send.request.method,
        call.operation.path,
        outcome,
        send.attempt,
        "-" if delay is None else f"{delay:.3f}s",
        call.request_id,
        redact_headers(dict(send.request.headers)),
    )
