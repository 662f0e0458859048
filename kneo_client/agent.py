"""The development surface (``client.agent``): spec validate, compile, explain,
policy-report and run. Tables of bindings shared by the async and the blocking client.
"""

from __future__ import annotations

from typing import Generic

from kneo_client._bind import M, Namespace, bind
from kneo_client._session import AsyncSession, BlockingSession
from kneo_proto import endpoints as ep

__all__ = ["AgentClient", "SpecsClient"]


class SpecsClient(Namespace[M]):
    """Spec validation, compilation, explanation, policy preview and ad-hoc runs."""

    validate = bind(ep.validate_spec)
    compile = bind(ep.compile_spec)
    explain = bind(ep.explain_spec)
    policy_report = bind(ep.spec_policy_report)
    run = bind(ep.run_spec)


class AgentClient(Generic[M]):
    """The development surface.

    Attributes:
        specs: ``/v1/specs/*``.
    """

    def __init__(self, session: AsyncSession | BlockingSession) -> None:
        self.specs: SpecsClient[M] = SpecsClient(session)

    def __repr__(self) -> str:
        return "<AgentClient>"
