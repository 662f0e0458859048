"""``RunPoll``: the pure machine behind ``wait_for_completion``.

Invariants: polling only ever reads (the driver issues ``get_run``, never a POST); one
overall timeout bounds every poll and every sleep: a poll request is given only the time
that remains, no sleep ends past the timeout, and once it has passed the wait fails with
``KneoWaitTimeoutError`` (a ``TimeoutError``). The first poll is always made, so
``timeout=0`` checks the run once (that poll, with no time left to give it, runs on the
client's own timeout and retries). A failed run is a terminal run, returned, not raised
(the contract).

The interval starts at ``poll_interval`` and is multiplied by ``poll_backoff`` after each
sleep, up to ``max_poll_interval``; the defaults (factor 1.0, no maximum) keep it fixed, as
the contract's ``poll_interval`` ("seconds to sleep between polls") describes. A poll that
fails with a 429 or 503 carrying ``Retry-After`` (its call's own retries spent) is not the
end of the wait when the wait can honour it: the wait sleeps that long and polls again,
provided the delay is within ``max_retry_after`` (the client's retry policy: a longer one
was refused by the call and stays refused), ends before the timeout, and the retry budget
did not deny the call's retry. Otherwise the error ends the wait, as before.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any, TypeAlias

from kneo_proto._actions import Failed, Sleep
from kneo_proto._config import Clock
from kneo_proto._errors import KneoError, KneoTimeoutError, KneoUsageError, KneoWaitTimeoutError
from kneo_proto._request_check import check_collection
from kneo_proto._retry import RETRY_AFTER_STATUS_CODES

__all__ = ["DEFAULT_TERMINAL_STATUSES", "FetchStatus", "RunDone", "RunPoll", "TerminalStatuses"]

DEFAULT_TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

TerminalStatuses: TypeAlias = Set[str] | list[str] | tuple[str, ...] | Iterator[str]
"""A set (frozenset, dict keys), list, tuple or iterator of statuses; never a lone ``str``.

``Iterable[str]`` would let a type checker pass ``"completed"`` (a string iterates over its
letters); none of these types matches a ``str``, so mypy flags that mistake. At run time
``RunPoll`` takes any iterable of strings and refuses a ``str`` or ``bytes``.
"""


@dataclass(frozen=True, slots=True)
class FetchStatus:
    """Fetch the run's status once, within ``deadline`` seconds (None: no limit)."""

    deadline: float | None


@dataclass(frozen=True, slots=True)
class RunDone:
    """The run reached a terminal status; ``run`` is the last polled run."""

    run: Any


class RunPoll:
    """Decides when to poll a run, when to sleep, and when the wait is over.

    Args:
        run_id: The run to wait for.
        clock: The driver's clocks.
        timeout: Total seconds to wait, or None to wait indefinitely.
        poll_interval: Seconds between polls (the first interval when polls back off).
        poll_backoff: What each interval is multiplied by for the next one (>= 1; 1.0
            keeps the interval fixed).
        max_poll_interval: The longest interval, or None for no limit but the timeout.
        terminal_statuses: Statuses that end the wait; ``DEFAULT_TERMINAL_STATUSES`` if None.
        max_retry_after: The longest ``Retry-After`` of a failed poll the wait sleeps for
            before polling again; None honours none (a failed poll ends the wait).

    Raises:
        KneoUsageError: for a negative or non-finite interval or timeout, a
            ``poll_backoff`` below 1, a ``max_poll_interval`` below ``poll_interval``, or
            ``terminal_statuses`` given as one string (or bytes) instead of a collection.
    """

    def __init__(
        self,
        run_id: str,
        *,
        clock: Clock,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
        terminal_statuses: TerminalStatuses | None = None,
        max_retry_after: float | None = None,
    ) -> None:
        _check_seconds("poll_interval", poll_interval, "a finite number of seconds >= 0")
        _check_seconds("poll_backoff", poll_backoff, "a finite factor >= 1", least=1.0)
        if max_poll_interval is not None:
            _check_seconds(
                "max_poll_interval",
                max_poll_interval,
                f"None (no limit) or a finite number of seconds >= poll_interval ({poll_interval})",
                least=poll_interval,
            )
        if timeout is not None:
            _check_seconds(
                "timeout", timeout, "None (wait indefinitely) or a finite number of seconds >= 0"
            )
        self.run_id = run_id
        self.poll_interval = poll_interval
        self.poll_backoff = poll_backoff
        self.max_poll_interval = max_poll_interval
        self.max_retry_after = max_retry_after
        self.terminal_statuses = (
            DEFAULT_TERMINAL_STATUSES
            if terminal_statuses is None
            else check_collection("terminal_statuses", terminal_statuses, "statuses")
        )
        self.polls = 0
        self.last_status: str | None = None
        self._clock = clock
        self._started = clock.monotonic()
        self._deadline = None if timeout is None else self._started + timeout
        self._timeout = timeout
        self._outcome: RunDone | Failed | None = None
        self._sleep_next: float | None = None
        # The next interval; float max stands for "no limit" so that growth never overflows.
        self._interval = poll_interval
        self._cap = sys.float_info.max if max_poll_interval is None else max_poll_interval

    def next_action(self) -> FetchStatus | Sleep | RunDone | Failed:
        """Return what the driver must do next."""
        if self._outcome is not None:
            return self._outcome
        remaining = self._remaining()
        if remaining is not None and remaining <= 0 and self.polls:
            self._outcome = Failed(self._timed_out())
            return self._outcome
        if self._sleep_next is not None:
            wanted, self._sleep_next = self._sleep_next, None
            return Sleep(wanted if remaining is None else min(wanted, remaining))
        self.polls += 1
        return FetchStatus(remaining if remaining is None or remaining > 0 else None)

    def receive_status(self, run: Any) -> None:
        """Record a polled run (any object with a ``status`` attribute)."""
        self.last_status = run.status
        if run.status in self.terminal_statuses:
            self._outcome = RunDone(run)
        else:
            self._sleep_next = self._interval
            self._interval = min(self._interval * self.poll_backoff, self._cap)

    def receive_error(self, error: KneoError) -> None:
        """Record a failed poll: the wait sleeps a ``Retry-After`` it can honour (see the
        module's docstring) and polls again, else ends with ``error`` (as timed out, for a
        timeout at the wait's deadline).
        """
        remaining = self._remaining()
        delay = self._honoured_retry_after(error, remaining)
        if delay is not None:
            self._sleep_next = delay
            return
        if isinstance(error, KneoTimeoutError) and remaining is not None and remaining <= 0:
            timed_out = self._timed_out()
            timed_out.__cause__ = error
            self._outcome = Failed(timed_out)
        else:
            self._outcome = Failed(error)

    @property
    def elapsed(self) -> float:
        """Seconds since the wait began, by the clock it was given."""
        return self._clock.monotonic() - self._started

    def _honoured_retry_after(self, error: KneoError, remaining: float | None) -> float | None:
        """The ``Retry-After`` the wait sleeps before polling again, or None to fail."""
        delay = error.retry_after
        if (
            delay is None
            or self.max_retry_after is None
            or error.status not in RETRY_AFTER_STATUS_CODES
            or error.retry_budget_exhausted
            or delay > self.max_retry_after
            # as a call does: no sleep that would end at or after the deadline
            or (remaining is not None and delay >= remaining)
        ):
            return None
        return delay

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock.monotonic()

    def _timed_out(self) -> KneoWaitTimeoutError:
        return KneoWaitTimeoutError(
            f"run {self.run_id} did not reach a terminal status within {self._timeout} s "
            f"(last status {self.last_status!r} after {self.polls} polls) - pass a longer "
            "timeout, or timeout=None to wait indefinitely",
            run_id=self.run_id,
            last_status=self.last_status,
            polls=self.polls,
            elapsed=self.elapsed,
        )


def _check_seconds(name: str, value: object, allowed: str, *, least: float = 0.0) -> None:
    """Raise ``KneoUsageError`` naming ``name`` and ``value`` unless finite and >= ``least``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= least)
    ):
        raise KneoUsageError(f"{name} must be {allowed}, not {value!r}")
