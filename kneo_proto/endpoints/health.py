"""Health probes: /v1/healthz, /v1/livez, /v1/readyz."""

from __future__ import annotations

from kneo_proto._operation import Parts, endpoint
from kneo_proto.models import HealthResponse

__all__ = ["healthz", "livez", "readyz"]


@endpoint("GET", "/v1/healthz", HealthResponse)
def healthz() -> Parts:
    """Overall service health. ``GET /v1/healthz``.

    Returns:
        HealthResponse: ``ok`` plus service, version and per-check metadata.
    """
    return Parts()


@endpoint("GET", "/v1/livez", HealthResponse)
def livez() -> Parts:
    """Process liveness; does not check downstream dependencies. ``GET /v1/livez``.

    Returns:
        HealthResponse: ``ok`` plus service and version.
    """
    return Parts()


@endpoint("GET", "/v1/readyz", HealthResponse)
def readyz() -> Parts:
    """Readiness (database, queue, runtime registry, providers, MCP). ``GET /v1/readyz``.

    Returns:
        HealthResponse: ``ok`` plus the per-check breakdown in ``metadata``.
    """
    return Parts()
