"""The emulator's clocks: virtual time that tests move, and real time for demos.

Invariants: the emulator reads time only through ``Clock.now()`` (seconds since the Unix
epoch, as a float); a ``VirtualClock`` never moves on its own and never goes backwards.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Protocol

__all__ = ["DEFAULT_EPOCH", "Clock", "SystemClock", "VirtualClock", "to_datetime"]

# 2025-01-01T00:00:00Z: a fixed start, so two runs of a test see the same timestamps.
DEFAULT_EPOCH = 1_735_689_600.0


class Clock(Protocol):
    """What the emulator needs from a clock."""

    def now(self) -> float:
        """Return the current time in seconds since the Unix epoch."""
        ...


class VirtualClock:
    """A clock that moves only when ``advance`` is called.

    Runs, human-review pauses, ``Retry-After`` waits and idempotency-key expiry all follow
    it, so a test can play minutes of platform time in microseconds.

    Args:
        start: The initial time, as epoch seconds or an aware ``datetime``; by default
            2025-01-01T00:00:00Z.
    """

    def __init__(self, start: float | datetime.datetime | None = None) -> None:
        if isinstance(start, datetime.datetime):
            if start.tzinfo is None:
                raise ValueError("start must be a timezone-aware datetime")
            start = start.timestamp()
        self._now = DEFAULT_EPOCH if start is None else float(start)
        # A server may serve the emulator from another thread while a test advances time.
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the virtual time in seconds since the Unix epoch."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: if ``seconds`` is negative (time never runs backwards).
        """
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by {seconds} seconds")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"VirtualClock({to_datetime(self.now()).isoformat()})"


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
