"""Models of environment policies, which gate which specs may run in each environment.

Invariants: a request replaces the whole policy, and omitted fields take the platform's
defaults (no allow-list, nothing denied, no review, no time limit).
"""

from __future__ import annotations

import datetime

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType

__all__ = [
    "EnvironmentPolicyListResponse",
    "EnvironmentPolicyRequest",
    "EnvironmentPolicyResponse",
]


class EnvironmentPolicyRequest(KneoModel, frozen=True, kw_only=True):
    """The replacement policy of an environment (the environment is named in the path)."""

    allowed_spec_ids: list[str] | UnsetType = UNSET
    denied_spec_ids: list[str] | UnsetType = UNSET
    allowed_tools: list[str] | UnsetType = UNSET
    require_human_review: bool | UnsetType = UNSET
    max_run_seconds: int | UnsetType = UNSET


class EnvironmentPolicyResponse(KneoModel, frozen=True, kw_only=True):
    """The policy of an environment as stored; ``version`` grows with every replacement."""

    environment: str
    denied_spec_ids: Expected[list[str]] = UNSET
    require_human_review: Expected[bool] = UNSET
    updated_at: Expected[datetime.datetime] = UNSET
    version: Expected[int] = UNSET
    # Absent: every spec not denied may run / every tool may be called / no time limit.
    allowed_spec_ids: list[str] | UnsetType | None = UNSET
    allowed_tools: list[str] | UnsetType | None = UNSET
    max_run_seconds: int | UnsetType | None = UNSET


class EnvironmentPolicyListResponse(KneoModel, frozen=True, kw_only=True):
    """The policy of every environment."""

    policies: list[EnvironmentPolicyResponse]
    count: Expected[int] = UNSET
