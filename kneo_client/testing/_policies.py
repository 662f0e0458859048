"""Environment policies: what is stored, how a PUT is checked, and how a spec is judged.

Invariants (spec: EnvironmentPolicyRequest/Response): a PUT replaces the whole policy, so
omitted fields take their defaults (no allow-lists, nothing denied, no review, no time
limit), and every replacement increments ``version``. A spec is allowed in an environment
only when every rule allows it; the rules compare spec IDs, which are spec names.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from kneo_client.testing._agent_specs import AgentSpec
from kneo_client.testing._clock import to_datetime
from kneo_client.testing._wire import ApiError
from kneo_proto.models import (
    ERROR_CODE_VALIDATION_ERROR,
    UNSET,
    EnvironmentPolicyRequest,
    EnvironmentPolicyResponse,
    PolicyOutcome,
)

__all__ = ["Policy", "default_policies", "evaluate", "replacement"]


@dataclass(frozen=True, slots=True)
class Policy:
    """The stored policy of one environment."""

    environment: str
    version: int
    updated_at: float
    denied_spec_ids: tuple[str, ...] = ()
    allowed_spec_ids: tuple[str, ...] | None = None
    allowed_tools: tuple[str, ...] | None = None
    require_human_review: bool = False
    max_run_seconds: int | None = None

    def model(self) -> EnvironmentPolicyResponse:
        """Return the policy as the spec's response model."""
        return EnvironmentPolicyResponse(
            environment=self.environment,
            denied_spec_ids=list(self.denied_spec_ids),
            require_human_review=self.require_human_review,
            updated_at=to_datetime(self.updated_at),
            version=self.version,
            allowed_spec_ids=_listed(self.allowed_spec_ids),
            allowed_tools=_listed(self.allowed_tools),
            max_run_seconds=UNSET if self.max_run_seconds is None else self.max_run_seconds,
        )

    def allows_tool(self, tool: str) -> bool:
        """Whether a run in this environment may call ``tool``."""
        return self.allowed_tools is None or tool in self.allowed_tools


def _listed(values: tuple[str, ...] | None) -> list[str] | msgspec.UnsetType:
    return UNSET if values is None else list(values)


def default_policies(now: float) -> dict[str, Policy]:
    """Return the policies a new emulator starts with (docs/emulator.md, "Policies")."""
    return {
        "dev": Policy("dev", 1, now),
        "staging": Policy(
            "staging", 1, now, denied_spec_ids=("always-fails",), max_run_seconds=600
        ),
        "prod": Policy(
            "prod",
            1,
            now,
            allowed_spec_ids=("support-triage", "nightly-report"),
            allowed_tools=("crm.lookup", "tickets.update", "warehouse.query", "reports.publish"),
            require_human_review=True,
        ),
    }


def _strings(values: list[str] | msgspec.UnsetType) -> tuple[str, ...] | None:
    return None if isinstance(values, msgspec.UnsetType) else tuple(dict.fromkeys(values))


def replacement(
    current: Policy | None, environment: str, request: EnvironmentPolicyRequest, now: float
) -> Policy:
    """Return the policy that replaces ``current`` (None for a new environment).

    A spec both allowed and denied is denied (the deny-list wins).

    Raises:
        ApiError: 422 ``validation_error`` when ``max_run_seconds`` is below 1.
    """
    limit = request.max_run_seconds
    if not isinstance(limit, msgspec.UnsetType) and limit < 1:
        message = "max_run_seconds must be >= 1"
        raise ApiError(422, ERROR_CODE_VALIDATION_ERROR, message, {"field": "max_run_seconds"})
    return Policy(
        environment,
        1 if current is None else current.version + 1,
        now,
        denied_spec_ids=_strings(request.denied_spec_ids) or (),
        allowed_spec_ids=_strings(request.allowed_spec_ids),
        allowed_tools=_strings(request.allowed_tools),
        require_human_review=request.require_human_review is True,
        max_run_seconds=None if isinstance(limit, msgspec.UnsetType) else limit,
    )


def evaluate(policy: Policy, spec: AgentSpec, estimated_seconds: float) -> list[PolicyOutcome]:
    """Return the verdict of every rule of ``policy`` on ``spec``, in a fixed order."""
    spec_id, env = spec.name, policy.environment
    denied = spec_id in policy.denied_spec_ids
    verdict = "is denied" if denied else "is not denied"
    outcomes = [
        PolicyOutcome(
            rule="denied_spec_ids", allowed=not denied, message=f"{spec_id} {verdict} in {env}"
        )
    ]
    if policy.allowed_spec_ids is not None:
        listed = spec_id in policy.allowed_spec_ids
        verdict = "is" if listed else "is not"
        message = f"{spec_id} {verdict} on the allow-list of {env}"
        outcomes.append(PolicyOutcome(rule="allowed_spec_ids", allowed=listed, message=message))
    if policy.allowed_tools is not None:
        refused = [tool for tool in spec.tools if not policy.allows_tool(tool)]
        message = (
            f"not allowed in {env}: {', '.join(refused)}" if refused else "every tool is allowed"
        )
        outcomes.append(PolicyOutcome(rule="allowed_tools", allowed=not refused, message=message))
    if policy.max_run_seconds is not None:
        fits = estimated_seconds <= policy.max_run_seconds
        message = f"estimated {estimated_seconds:g} s; {env} allows {policy.max_run_seconds} s"
        outcomes.append(PolicyOutcome(rule="max_run_seconds", allowed=fits, message=message))
    review = (
        "every run pauses for human review first"
        if policy.require_human_review
        else "no review required"
    )
    outcomes.append(PolicyOutcome(rule="require_human_review", allowed=True, message=review))
    return outcomes
