"""The retry budget: a token bucket that stops retries from multiplying an outage.

Modelled on the AWS SDKs' standard retry mode. Invariants: the level stays within
[0, capacity]; a first attempt never asks it for anything; a denied retry never blocks, it
simply fails the call with the last error. The bucket holds plain numbers and no lock: a
client shared between threads wraps its calls in one (``kneo_client`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from kneo_proto._actions import FailureKind

__all__ = ["RetryBudget", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How a client's shared retry budget fills and drains.

    Attributes:
        capacity: Tokens in a full bucket.
        retry_cost: Tokens a retry after a retryable status (429, 502-504, 409 in progress)
            takes.
        timeout_retry_cost: Tokens a retry after a transport failure or timeout takes
            (such failures usually mean overload).
        success_refund: Tokens a first-try success puts back.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_retry_cost: int = 10
    success_refund: int = 1

    def __post_init__(self) -> None:
        if min(self.capacity, self.retry_cost, self.timeout_retry_cost, self.success_refund) < 0:
            raise ValueError("RetryBudget amounts must be >= 0")

    def cost_of(self, failure: FailureKind | None) -> int:
        """Return the tokens a retry after ``failure`` (None for a status) takes."""
        return self.retry_cost if failure is None else self.timeout_retry_cost


class TokenBucket:
    """The mutable level of one client's ``RetryBudget``.

    Args:
        budget: The budget's rules.
    """

    __slots__ = ("available", "budget")

    def __init__(self, budget: RetryBudget | None = None) -> None:
        self.budget = budget or RetryBudget()
        self.available = self.budget.capacity

    def withdraw(self, cost: int) -> bool:
        """Take ``cost`` tokens and return True, or take nothing and return False."""
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def deposit(self, amount: int) -> None:
        """Put ``amount`` tokens back, never above capacity."""
        self.available = min(self.available + amount, self.budget.capacity)

    def __repr__(self) -> str:
        return f"TokenBucket(available={self.available}, capacity={self.budget.capacity})"
