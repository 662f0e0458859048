"""``LockedTokenBucket``: a client's retry budget, safe to share between threads."""

from __future__ import annotations

import threading

from kneo_drivers._orphans import survive_fork
from kneo_proto import TokenBucket

__all__ = ["LockedTokenBucket"]


class LockedTokenBucket(TokenBucket):
    """A ``TokenBucket`` whose withdrawals and deposits are atomic across threads."""

    __slots__ = ("__weakref__", "_lock")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        survive_fork(self)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at the fork: in the child it would
        # never be released.
        self._lock = threading.Lock()

    def withdraw(self, cost: int) -> bool:
        """Take ``cost`` tokens atomically; False (taking nothing) if too few are left."""
        with self._lock:
            return super().withdraw(cost)

    def deposit(self, amount: int) -> None:
        """Put ``amount`` tokens back atomically, never above capacity."""
        with self._lock:
            super().deposit(amount)
