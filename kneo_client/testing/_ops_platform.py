"""Handlers of the operational endpoints: health probes, audit, credentials and policies.

Invariants: each handler reads the request through its ``Context`` and answers with an
``Outcome`` built from ``kneo_proto.models``; a mutation appends exactly one audit event.
"""

from __future__ import annotations

import msgspec

from kneo_client.testing._audit import AUDIT_LISTING
from kneo_client.testing._paging import paginate
from kneo_client.testing._platform import CREDENTIALS, Platform
from kneo_client.testing._policies import replacement
from kneo_client.testing._wire import ApiError, Context, Outcome, decode_body, json_outcome
from kneo_proto.models import (
    AUDIT_EVENT_POLICY_UPDATED,
    ERROR_CODE_NOT_FOUND,
    ERROR_CODE_UNAVAILABLE,
    AuditEventListResponse,
    CredentialInventoryResponse,
    EnvironmentPolicyListResponse,
    EnvironmentPolicyRequest,
    HealthCheck,
    HealthResponse,
    HealthResponseMetadata,
)

__all__ = [
    "get_environment_policy",
    "healthz",
    "list_audit_events",
    "list_credentials",
    "list_environment_policies",
    "livez",
    "put_environment_policy",
    "readyz",
]

SERVICE = "kneo-emulator"
API_VERSION = "0.4.0"  # the spec's info.version
CHECKS = ("database", "queue", "runtime_registry", "providers", "mcp")


def _checks(ok: bool) -> dict[str, HealthCheck]:
    detail = "emulated in memory" if ok else "the emulator was told it is not ready"
    return {name: HealthCheck(ok=ok, detail=detail) for name in CHECKS}


def _health(ok: bool, checks: dict[str, HealthCheck] | None = None) -> Outcome:
    metadata = HealthResponseMetadata(checks=checks) if checks is not None else msgspec.UNSET
    return json_outcome(
        HealthResponse(ok=ok, service=SERVICE, version=API_VERSION, metadata=metadata)
    )


def healthz(platform: Platform, ctx: Context) -> Outcome:
    """Overall health: ``ok`` follows readiness."""
    return _health(platform.ready, _checks(platform.ready))


def livez(platform: Platform, ctx: Context) -> Outcome:
    """Liveness: the emulator is always alive."""
    return _health(True)


def readyz(platform: Platform, ctx: Context) -> Outcome:
    """Readiness: 503 ``unavailable`` with the per-check breakdown when not ready."""
    if not platform.ready:
        checks = {name: msgspec.to_builtins(check) for name, check in _checks(False).items()}
        raise ApiError(
            503,
            ERROR_CODE_UNAVAILABLE,
            "the platform is not ready",
            {"checks": checks},
            (("Retry-After", "1"),),
        )
    return _health(True, _checks(True))


def list_audit_events(platform: Platform, ctx: Context) -> Outcome:
    """One page of audit events, filtered by event_type, run_id and principal."""
    page = paginate(platform.audit.records, ctx.query, AUDIT_LISTING)
    events = [record.model() for record in page.items]
    return json_outcome(AuditEventListResponse(events=events, **page.fields()))


def list_credentials(platform: Platform, ctx: Context) -> Outcome:
    """The fixed credential inventory: references, never secrets."""
    credentials = list(CREDENTIALS)
    return json_outcome(
        CredentialInventoryResponse(credentials=credentials, count=len(credentials))
    )


def list_environment_policies(platform: Platform, ctx: Context) -> Outcome:
    """Every environment's policy, by environment name."""
    policies = [platform.policies[name].model() for name in sorted(platform.policies)]
    return json_outcome(EnvironmentPolicyListResponse(policies=policies, count=len(policies)))


def get_environment_policy(platform: Platform, ctx: Context) -> Outcome:
    """One environment's policy, or 404."""
    environment = ctx.params["environment"]
    policy = platform.policies.get(environment)
    if policy is None:
        message = f"no policy for environment {environment!r}"
        raise ApiError(404, ERROR_CODE_NOT_FOUND, message, {"environment": environment})
    return json_outcome(policy.model())


def put_environment_policy(platform: Platform, ctx: Context) -> Outcome:
    """Replace (or create) an environment's policy; the version increments."""
    environment = ctx.params["environment"]
    request = decode_body(ctx.body, EnvironmentPolicyRequest)
    policy = replacement(platform.policies.get(environment), environment, request, ctx.now)
    platform.policies[environment] = policy
    details = {"environment": environment, "version": policy.version}
    platform.audit.record(AUDIT_EVENT_POLICY_UPDATED, ctx, details=details)
    return json_outcome(policy.model())
