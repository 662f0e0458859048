"""Environment policies: which specs may run in which deployment environment."""

from __future__ import annotations

from kneo_proto._operation import Parts, endpoint
from kneo_proto.models import (
    EnvironmentPolicyListResponse,
    EnvironmentPolicyRequest,
    EnvironmentPolicyRequestDict,
    EnvironmentPolicyResponse,
)

__all__ = ["get_environment_policy", "list_environment_policies", "put_environment_policy"]


@endpoint("GET", "/v1/policies/environment", EnvironmentPolicyListResponse)
def list_environment_policies() -> Parts:
    """List the policy of every environment. ``GET /v1/policies/environment``.

    Returns:
        EnvironmentPolicyListResponse: every environment's policy.
    """
    return Parts()


@endpoint("GET", "/v1/policies/environment/{environment}", EnvironmentPolicyResponse)
def get_environment_policy(environment: str) -> Parts:
    """Fetch one environment's policy. ``GET /v1/policies/environment/{environment}``.

    Args:
        environment: The environment's name, e.g. ``"prod"``.

    Returns:
        EnvironmentPolicyResponse: the policy.
    """
    return Parts(path={"environment": environment})


@endpoint(
    "PUT",
    "/v1/policies/environment/{environment}",
    EnvironmentPolicyResponse,
    body=EnvironmentPolicyRequest,
)
def put_environment_policy(
    environment: str, body: EnvironmentPolicyRequest | EnvironmentPolicyRequestDict
) -> Parts:
    """Replace an environment's policy. ``PUT /v1/policies/environment/{environment}``.

    PUT is idempotent by HTTP semantics, so no ``Idempotency-Key`` is sent and retries are
    safe.

    Args:
        environment: The environment's name.
        body: The whole new policy, as a model or a dict (``EnvironmentPolicyRequestDict``).

    Returns:
        EnvironmentPolicyResponse: the stored policy.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(path={"environment": environment}, body=body)
