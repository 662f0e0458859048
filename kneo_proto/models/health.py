"""Models of the health probes (healthz, livez, readyz).

Invariants: only ``ok`` is guaranteed; the breakdown is optional and keyed by check name.
"""

from __future__ import annotations

from kneo_proto.models._base import UNSET, KneoModel, UnsetType

__all__ = ["HealthCheck", "HealthResponse", "HealthResponseMetadata"]


class HealthCheck(KneoModel, frozen=True, kw_only=True):
    """The result of one readiness check."""

    ok: bool
    detail: str | UnsetType | None = UNSET


class HealthResponseMetadata(KneoModel, frozen=True, kw_only=True):
    """Per-check breakdown of a probe, keyed by check name (``database``, ``queue``, ...)."""

    checks: dict[str, HealthCheck] | UnsetType | None = UNSET


class HealthResponse(KneoModel, frozen=True, kw_only=True):
    """The result of a health probe."""

    ok: bool
    service: str | UnsetType | None = UNSET
    version: str | UnsetType | None = UNSET
    metadata: HealthResponseMetadata | UnsetType | None = UNSET
