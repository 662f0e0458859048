"""The emulator's clocks: virtual time that tests move (``VirtualClock``, the one clock the
memory drivers run on too), and real time for demos.

Invariants: the emulator reads time only through ``Clock.now()`` (seconds since the Unix
epoch, as a float); a ``VirtualClock`` never moves on its own and never goes backwards.
"""

from __future__ import annotations

import datetime
import time
from typing import Protocol

from kneo_drivers.memory import DEFAULT_EPOCH, VirtualClock

__all__ = ["DEFAULT_EPOCH", "Clock", "SystemClock", "VirtualClock", "to_datetime"]


class Clock(Protocol):
    """What the emulator needs from a clock."""

    def now(self) -> float:
        """Return the current time in seconds since the Unix epoch."""
        ...


class SystemClock:
    """Real wall-clock time (``time.time()``), for demos and manual exploration."""

    def now(self) -> float:
        """Return the real time in seconds since the Unix epoch."""
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


def to_datetime(seconds: float) -> datetime.datetime:
    """Return epoch ``seconds`` as an aware UTC ``datetime`` (RFC 3339 on the wire)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
