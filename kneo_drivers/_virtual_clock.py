"""``VirtualClock``: the one clock of kneo-client's test tools (emulator and memory drivers)."""

from __future__ import annotations

import datetime
import threading

from kneo_proto import Clock

__all__ = ["DEFAULT_EPOCH", "VirtualClock"]

# 2025-01-01T00:00:00Z: a fixed start, so two runs of a test see the same timestamps.
DEFAULT_EPOCH = 1_735_689_600.0


class VirtualClock:
    """A clock that moves only when ``advance`` is called, and never backwards.

    The one clock of kneo-client's test tools: the emulator reads ``now()``, a memory driver
    reads ``clock`` (its monotonic time counts from the start, its wall time is ``now()``),
    so one ``advance`` moves both. Safe to advance from another thread (a server thread).

    Args:
        start: The initial wall time, as epoch seconds or an aware ``datetime``; by default
            2025-01-01T00:00:00Z.
    """

    def __init__(self, start: float | datetime.datetime | None = None) -> None:
        if isinstance(start, datetime.datetime):
            if start.tzinfo is None:
                raise ValueError("start must be a timezone-aware datetime")
            start = start.timestamp()
        self._start = DEFAULT_EPOCH if start is None else float(start)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.clock = Clock(monotonic=self.monotonic, wall=self.now)
        """The clock a ``Call`` reads (``kneo_proto.Clock``)."""

    def monotonic(self) -> float:
        """Seconds since the clock was made, as it was advanced."""
        return self._elapsed

    def now(self) -> float:
        """The virtual wall time, in seconds since the Unix epoch."""
        return self._start + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: if ``seconds`` is negative (time never runs backwards).
        """
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by {seconds} seconds")
        with self._lock:
            self._elapsed += seconds

    def __repr__(self) -> str:
        shown = datetime.datetime.fromtimestamp(self.now(), datetime.UTC).isoformat()
        return f"VirtualClock({shown})"
