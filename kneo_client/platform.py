"""The operational surface (``client.platform``): runs, human tasks, audit, credentials,
policies and health. Each namespace is a table binding ``kneo_proto`` endpoint
declarations; the same tables serve ``KneoClient`` (async) and ``SyncKneoClient``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, overload

from kneo_client._bind import (
    AsyncMode,
    BlockingMode,
    M,
    Namespace,
    bind,
    paginate,
    poll_run,
    watch_run,
)
from kneo_client._session import AsyncSession, BlockingSession
from kneo_proto import DEFAULT_TERMINAL_STATUSES, endpoints as ep
from kneo_proto.models import (
    AuditEvent,
    Checkpoint,
    HumanTaskResponse,
    RunStatusResponse,
    TraceEvent,
)

if TYPE_CHECKING:
    from kneo_client.core.transport import SyncTransport, Transport

__all__ = [
    "DEFAULT_TERMINAL_STATUSES",
    "AuditClient",
    "CredentialsClient",
    "HealthClient",
    "HumanTasksClient",
    "PlatformClient",
    "PoliciesClient",
    "RunsClient",
]


class HealthClient(Namespace[M]):
    """The three platform health probes."""

    healthz = bind(ep.healthz)
    livez = bind(ep.livez)
    readyz = bind(ep.readyz)


class RunsClient(Namespace[M]):
    """The run lifecycle: create, list, get, cancel, continue, replay, trace, checkpoints,
    policy reports, recovery, plus ``wait_for_completion`` and the ``iter_*`` iterators.
    """

    create = bind(ep.create_run)
    list = bind(ep.list_runs)
    get = bind(ep.get_run)
    cancel = bind(ep.cancel_run)
    continue_ = bind(ep.continue_run)
    replay = bind(ep.replay_run)
    trace = bind(ep.get_run_trace)
    checkpoints = bind(ep.list_run_checkpoints)
    checkpoints_diff = bind(ep.diff_run_checkpoints)
    policy_report = bind(ep.get_run_policy_report)
    recovery = bind(ep.get_run_recovery)
    wait_for_completion = poll_run(ep.get_run)
    watch = watch_run(ep.get_run)
    iter_all = paginate(ep.list_runs, RunStatusResponse)
    iter_trace = paginate(ep.get_run_trace, TraceEvent)
    iter_checkpoints = paginate(ep.list_run_checkpoints, Checkpoint)


class HumanTasksClient(Namespace[M]):
    """Human-in-the-loop pause points, identified by a continuation ID."""

    list = bind(ep.list_human_tasks)
    get = bind(ep.get_human_task)
    resume = bind(ep.resume_human_task)
    iter_all = paginate(ep.list_human_tasks, HumanTaskResponse)


class AuditClient(Namespace[M]):
    """Audit events: the platform's canonical operational log."""

    list = bind(ep.list_audit_events)
    iter_all = paginate(ep.list_audit_events, AuditEvent)


class CredentialsClient(Namespace[M]):
    """Credential references (never secret material)."""

    list = bind(ep.list_credentials)


class PoliciesClient(Namespace[M]):
    """Environment policies: which specs may run in which environment."""

    environment_list = bind(ep.list_environment_policies)
    environment_get = bind(ep.get_environment_policy)
    environment_put = bind(ep.put_environment_policy)


class PlatformClient(Generic[M]):
    """The operational surface: six namespaces sharing one session.

    Attributes:
        health: ``/v1/{healthz,livez,readyz}``.
        runs: ``/v1/runs`` and its sub-resources.
        human_tasks: ``/v1/human-tasks``.
        audit: ``/v1/audit-events``.
        credentials: ``/v1/security/credentials``.
        policies: ``/v1/policies/environment``.
    """

    @overload
    def __init__(self: PlatformClient[AsyncMode], transport: Transport | AsyncSession) -> None: ...
    @overload
    def __init__(
        self: PlatformClient[BlockingMode], transport: SyncTransport | BlockingSession
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
        self.health: HealthClient[M] = HealthClient(transport)
        self.runs: RunsClient[M] = RunsClient(transport)
        self.human_tasks: HumanTasksClient[M] = HumanTasksClient(transport)
        self.audit: AuditClient[M] = AuditClient(transport)
        self.credentials: CredentialsClient[M] = CredentialsClient(transport)
        self.policies: PoliciesClient[M] = PoliciesClient(transport)

    def __repr__(self) -> str:
        return "<PlatformClient>"
