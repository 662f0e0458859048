"""Retry policy and retry budget (the rules live in ``kneo_proto``)."""

from kneo_proto import RETRYABLE_STATUS_CODES, RetryBudget, RetryPolicy

__all__ = ["RETRYABLE_STATUS_CODES", "RetryBudget", "RetryPolicy"]
