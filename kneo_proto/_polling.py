"""``RunPoll``: the pure machine behind ``wait_for_completion``.

Invariants: polling only ever reads (the driver issues ``get_run``, never a POST); one
overall timeout bounds every poll and every sleep: a poll request is given only the time
that remains, no sleep ends past the timeout, and once it has passed the wait fails with
``KneoWaitTimeoutError`` (a ``TimeoutError``). The first poll is always made, so
``timeout=0`` checks the run once (that poll, with no time left to give it, runs on the
client's own timeout and retries). A failed run is a terminal run, returned, not raised
(the contract).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any, TypeAlias

from kneo_proto._actions import Failed, Sleep
from kneo_proto._config import Clock
from kneo_proto._errors import KneoError, KneoTimeoutError, KneoUsageError, KneoWaitTimeoutError
from kneo_proto._request_check import check_collection

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
        poll_interval: Seconds between polls.
        terminal_statuses: Statuses that end the wait; ``DEFAULT_TERMINAL_STATUSES`` if None.

    Raises:
        KneoUsageError: for a negative or non-finite interval or timeout, or
            ``terminal_statuses`` given as one string (or bytes) instead of a collection.
    """

    def __init__(
        self,
        run_id: str,
        *,
        clock: Clock,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
    ) -> None:
        _check_seconds("poll_interval", poll_interval, "a finite number of seconds >= 0")
        if timeout is not None:
            _check_seconds(
                "timeout", timeout, "None (wait indefinitely) or a finite number of seconds >= 0"
            )
        self.run_id = run_id
        self.poll_interval = poll_interval
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
        self._sleep_next = False

    def next_action(self) -> FetchStatus | Sleep | RunDone | Failed:
        """Return what the driver must do next."""
        if self._outcome is not None:
            return self._outcome
        remaining = self._remaining()
        if remaining is not None and remaining <= 0 and self.polls:
            self._outcome = Failed(self._timed_out())
            return self._outcome
        if self._sleep_next:
            self._sleep_next = False
            seconds = (
                self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            )
            return Sleep(seconds)
        self.polls += 1
        return FetchStatus(remaining if remaining is None or remaining > 0 else None)

    def receive_status(self, run: Any) -> None:
        """Record a polled run (any object with a ``status`` attribute)."""
        self.last_status = run.status
        if run.status in self.terminal_statuses:
            self._outcome = RunDone(run)
        else:
            self._sleep_next = True

    def receive_error(self, error: KneoError) -> None:
        """Record a failed poll: a timeout at the wait's deadline ends the wait as timed out."""
        remaining = self._remaining()
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


def _check_seconds(name: str, value: object, allowed: str) -> None:
    """Raise ``KneoUsageError`` naming ``name`` and ``value`` unless it is finite and >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        raise KneoUsageError(f"{name} must be {allowed}, not {value!r}")
