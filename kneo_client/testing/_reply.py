"""What the emulator's pure core answers: a response, plus how a server must deliver it.

Invariant: the core never performs I/O or sleeps; latency and connection faults are
instructions in the ``Reply`` that each server (in-memory or socket) carries out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kneo_proto import Response

__all__ = ["Delivery", "Reply"]


class Delivery(enum.Enum):
    """How the server delivers (or fails to deliver) a reply."""

    NORMAL = "normal"
    """Send the whole response."""
    RESET_BEFORE_RESPONSE = "reset_before_response"
    """Close the connection abruptly (RST) after reading the request, sending nothing."""
    RESET_MID_BODY = "reset_mid_body"
    """Send the status line, headers and part of the body, then reset the connection."""
    TRUNCATED_BODY = "truncated_body"
    """Declare the full Content-Length but send only part of the body, then close."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The emulator's answer to one request.

    Attributes:
        response: The response (for the faulty deliveries, the one that is cut short).
        delay: Seconds the server waits before answering (added latency).
        delivery: How the server delivers it.
    """

    response: Response
    delay: float = 0.0
    delivery: Delivery = Delivery.NORMAL
