"""The emulated platform's state: specs, runs, human tasks, policies, audit log, credentials.

Invariants: all state lives here, in memory; IDs are deterministic (a counter per prefix),
so two emulators fed the same requests give the same answers; ``advance`` brings every live
run up to the given time and is called before each request is handled.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator

from kneo_client.testing._agent_specs import AgentSpec, analyze
from kneo_client.testing._audit import AuditLog
from kneo_client.testing._policies import Policy, default_policies
from kneo_client.testing._runs import HumanTask, Run, RunEngine, RunTiming
from kneo_client.testing._samples import SAMPLE_SPECS
from kneo_client.testing._wire import ApiError
from kneo_proto.models import ERROR_CODE_NOT_FOUND, CredentialReference

__all__ = ["CREDENTIALS", "Platform"]


def _at(year: int, month: int, day: int) -> datetime.datetime:
    return datetime.datetime(year, month, day, 9, 0, tzinfo=datetime.UTC)


# The fixed inventory: references only. No field of CredentialReference can hold a secret.
CREDENTIALS: tuple[CredentialReference, ...] = (
    CredentialReference(
        name="openai-prod",
        provider="openai",
        kind="api_key",
        scopes=["models.invoke"],
        created_at=_at(2024, 6, 3),
        last_rotated_at=_at(2024, 12, 2),
    ),
    CredentialReference(
        name="github-bot",
        provider="github",
        kind="oauth_token",
        scopes=["repo:read", "issues:write"],
        created_at=_at(2024, 8, 19),
    ),
    CredentialReference(
        name="crm-service",
        provider="salesforce",
        kind="oauth_client",
        scopes=["crm.lookup", "tickets.update"],
        created_at=_at(2024, 9, 30),
        last_rotated_at=_at(2024, 11, 14),
    ),
    CredentialReference(
        name="warehouse-reader",
        provider="snowflake",
        kind="service_account",
        scopes=["warehouse.query"],
        created_at=_at(2024, 10, 7),
    ),
)


def _samples() -> dict[str, AgentSpec]:
    specs = {}
    for spec_id, text in SAMPLE_SPECS.items():
        spec = analyze(text, "yaml").spec
        if spec is None or spec.name != spec_id:
            raise RuntimeError(f"the sample spec {spec_id} is broken")
        specs[spec_id] = spec
    return specs


class Platform:
    """Everything the emulated platform knows.

    Args:
        now: The time the platform starts (stamps the default policies).
        timing: How long runs take.
    """

    def __init__(self, now: float, timing: RunTiming) -> None:
        self._counts: Counter[str] = Counter()
        self.policies: dict[str, Policy] = default_policies(now)
        self.specs: dict[str, AgentSpec] = _samples()
        self.runs: dict[str, Run] = {}
        self.audit = AuditLog()
        self.engine = RunEngine(timing, self.new_id, self.policies.get)
        self.ready = True

    def new_id(self, prefix: str) -> str:
        """Return the next ID with ``prefix``, e.g. ``run-000001``."""
        self._counts[prefix] += 1
        return f"{prefix}-{self._counts[prefix]:06d}"

    def advance(self, now: float) -> None:
        """Carry every live run forward to ``now``."""
        for run in self.runs.values():
            if not run.terminal:
                self.engine.advance(run, now)

    def run(self, run_id: str) -> Run:
        """Return run ``run_id``.

        Raises:
            ApiError: 404 ``not_found``.
        """
        found = self.runs.get(run_id)
        if found is None:
            raise ApiError(404, ERROR_CODE_NOT_FOUND, f"no run {run_id!r}", {"run_id": run_id})
        return found

    def tasks(self) -> Iterator[HumanTask]:
        """Yield every human task, oldest first."""
        tasks = [task for run in self.runs.values() for task in run.tasks]
        yield from sorted(tasks, key=lambda t: t.continuation_id)

    def task(self, continuation_id: str) -> tuple[HumanTask, Run]:
        """Return human task ``continuation_id`` and its run.

        Raises:
            ApiError: 404 ``not_found``.
        """
        for run in self.runs.values():
            for task in run.tasks:
                if task.continuation_id == continuation_id:
                    return task, run
        message = f"no human task {continuation_id!r}"
        raise ApiError(404, ERROR_CODE_NOT_FOUND, message, {"continuation_id": continuation_id})
