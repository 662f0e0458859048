"""The development surface (``client.agent``): spec validate, compile, explain,
policy-report and run. Tables of bindings shared by the async and the blocking client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, overload

from kneo_client._bind import AsyncMode, BlockingMode, M, Namespace, bind
from kneo_client._session import AsyncSession, BlockingSession
from kneo_proto import endpoints as ep

if TYPE_CHECKING:
    from kneo_client.core.transport import SyncTransport, Transport

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

    @overload
    def __init__(self: AgentClient[AsyncMode], transport: Transport | AsyncSession) -> None: ...
    @overload
    def __init__(
        self: AgentClient[BlockingMode], transport: SyncTransport | BlockingSession
    ) -> None: ...
    @overload
    def __init__(self, transport: AsyncSession | BlockingSession) -> None: ...
    def __init__(
        self, transport: Transport | SyncTransport | AsyncSession | BlockingSession
    ) -> None:
        """Bind every namespace to ``transport``: a ``Transport`` gives async namespaces, a
        ``SyncTransport`` blocking ones.

        Raises:
            TypeError: if ``transport`` is neither.
        """
        self.specs: SpecsClient[M] = SpecsClient(transport)

    def __repr__(self) -> str:
        return "<AgentClient>"
