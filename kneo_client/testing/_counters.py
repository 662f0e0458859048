"""What a test can count: requests per path and per operation, executions per idempotency key.

Invariants: ``requests`` counts every request the emulator receives (faulted ones too),
keyed by path without the query; ``operations`` counts the requests that matched one of the
spec's operations, keyed by operation ID; ``executions`` counts, per Idempotency-Key, how
often a POST really ran (a replay or a rejected repeat does not count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Counters"]


@dataclass
class Counters:
    """The emulator's counters; reach them as ``emulator.counters``.

    Attributes:
        requests: Path (e.g. ``/v1/runs``) to the number of requests received.
        operations: Operation ID (e.g. ``create_run``) to the number of requests received.
        executions: Idempotency-Key to the number of times its POST was executed.
    """

    requests: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    executions: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Set every counter back to zero."""
        self.requests.clear()
        self.operations.clear()
        self.executions.clear()
