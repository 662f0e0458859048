"""Handlers of runs and human tasks: create, list, inspect, cancel, continue, resume.

Invariants: a run starts only when its environment's policy allows its spec (else 403
``policy_denied``, and nothing is created); each mutation (run created, cancelled or
continued; task resumed) appends exactly one audit event; a request that changes nothing
(cancelling a finished run) appends none.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kneo_client.testing._agent_specs import AgentSpec
from kneo_client.testing._paging import paginate
from kneo_client.testing._platform import Platform
from kneo_client.testing._policies import evaluate
from kneo_client.testing._run_views import (
    CHECKPOINT_LISTING,
    RUN_LISTING,
    TASK_LISTING,
    TRACE_LISTING,
    checkpoint_model,
    create_model,
    diff_states,
    policy_report,
    recovery_model,
    replay_model,
    status_model,
    task_model,
    trace_model,
)
from kneo_client.testing._runs import HumanDecision, Run, policy_review_step
from kneo_client.testing._wire import ApiError, Context, Outcome, decode_body, json_outcome
from kneo_proto.models import (
    AUDIT_EVENT_HUMAN_TASK_RESUMED,
    AUDIT_EVENT_RUN_CANCELLED,
    AUDIT_EVENT_RUN_CONTINUED,
    AUDIT_EVENT_RUN_CREATED,
    ERROR_CODE_POLICY_DENIED,
    ERROR_CODE_VALIDATION_ERROR,
    KNOWN_HUMAN_DECISIONS,
    CheckpointDiffResponse,
    CheckpointListResponse,
    HumanResumeRequest,
    HumanResumeResponse,
    HumanTaskListResponse,
    RunCreateRequest,
    RunListResponse,
    TraceResponse,
)

__all__ = [
    "cancel_run",
    "continue_run",
    "create_run",
    "diff_run_checkpoints",
    "get_human_task",
    "get_run",
    "get_run_policy_report",
    "get_run_recovery",
    "get_run_trace",
    "list_human_tasks",
    "list_run_checkpoints",
    "list_runs",
    "replay_run",
    "resume_human_task",
    "start_run",
]

DEFAULT_ENVIRONMENT = "dev"  # spec: RunCreateRequest.environment default


def _invalid(message: str, **details: Any) -> ApiError:
    return ApiError(422, ERROR_CODE_VALIDATION_ERROR, message, details or None)


def _given(value: Any) -> Any:
    return None if isinstance(value, msgspec.UnsetType) else value


def start_run(
    platform: Platform, ctx: Context, spec: AgentSpec, spec_id: str, request: RunCreateRequest
) -> Run:
    """Create and schedule a run of ``spec`` if the environment's policy allows it.

    Raises:
        ApiError: 422 for an unknown environment, 403 ``policy_denied`` when a rule refuses.
    """
    environment = _given(request.environment) or spec.environment or DEFAULT_ENVIRONMENT
    policy = platform.policies.get(environment)
    if policy is None:
        known = ", ".join(sorted(platform.policies))
        raise _invalid(f"unknown environment {environment!r}; known: {known}", field="environment")
    steps = spec.steps
    if policy.require_human_review:
        steps = (policy_review_step(environment), *steps)
    outcomes = evaluate(policy, spec, platform.engine.timing.estimate(steps))
    refused = [o for o in outcomes if not o.allowed]
    if refused:
        reasons = "; ".join(f"{o.rule}: {_given(o.message)}" for o in refused)
        raise ApiError(
            403,
            ERROR_CODE_POLICY_DENIED,
            f"the {environment} policy does not allow {spec.name} ({reasons})",
            {"environment": environment, "spec_id": spec_id, "rules": [o.rule for o in refused]},
        )
    run = Run(
        run_id=platform.new_id("run"),
        spec=spec,
        spec_id=spec_id,
        steps=steps,
        environment=environment,
        created_at=ctx.now,
        inputs=_given(request.inputs) or {},
        labels=_given(request.labels) or {},
        policy_version=policy.version,
        policy_outcomes=[msgspec.to_builtins(o) for o in outcomes],
    )
    platform.runs[run.run_id] = run
    platform.engine.start(run)
    details = {"spec_id": spec_id, "environment": environment, "path": ctx.path}
    platform.audit.record(AUDIT_EVENT_RUN_CREATED, ctx, run_id=run.run_id, details=details)
    return run


def create_run(platform: Platform, ctx: Context) -> Outcome:
    """Start a run of a registered (compiled or sample) spec."""
    request = decode_body(ctx.body, RunCreateRequest)
    spec_id = _given(request.spec_id)
    if not spec_id:
        message = "spec_id is required; to run inline spec text, use POST /v1/specs/run"
        raise _invalid(message, field="spec_id")
    spec = platform.specs.get(spec_id)
    if spec is None:
        known = ", ".join(sorted(platform.specs))
        raise _invalid(
            f"unknown spec_id {spec_id!r}; compile it first (known: {known})", spec_id=spec_id
        )
    return json_outcome(create_model(start_run(platform, ctx, spec, spec_id, request)), 201)


def list_runs(platform: Platform, ctx: Context) -> Outcome:
    """One page of runs, optionally of one status."""
    page = paginate(list(platform.runs.values()), ctx.query, RUN_LISTING)
    return json_outcome(
        RunListResponse(runs=[status_model(r) for r in page.items], **page.fields())
    )


def get_run(platform: Platform, ctx: Context) -> Outcome:
    """The run as it is now."""
    return json_outcome(status_model(platform.run(ctx.params["run_id"])))


def cancel_run(platform: Platform, ctx: Context) -> Outcome:
    """Cancel a live run; a finished run is returned unchanged."""
    run = platform.run(ctx.params["run_id"])
    if platform.engine.cancel(run, ctx.now):
        platform.audit.record(AUDIT_EVENT_RUN_CANCELLED, ctx, run_id=run.run_id)
    return json_outcome(status_model(run))


def continue_run(platform: Platform, ctx: Context) -> Outcome:
    """Carry a paused run on after its human task was resumed."""
    run = platform.run(ctx.params["run_id"])
    decision = platform.engine.continue_(run, ctx.now)
    details = {"decision": decision, "status": run.status}
    platform.audit.record(AUDIT_EVENT_RUN_CONTINUED, ctx, run_id=run.run_id, details=details)
    return json_outcome(create_model(run))


def replay_run(platform: Platform, ctx: Context) -> Outcome:
    """The run's replay view."""
    return json_outcome(replay_model(platform.run(ctx.params["run_id"])))


def get_run_trace(platform: Platform, ctx: Context) -> Outcome:
    """One page of the run's trace, optionally of one event type."""
    run = platform.run(ctx.params["run_id"])
    page = paginate(run.trace, ctx.query, TRACE_LISTING)
    events = [trace_model(run, record) for record in page.items]
    return json_outcome(TraceResponse(run_id=run.run_id, events=events, **page.fields()))


def list_run_checkpoints(platform: Platform, ctx: Context) -> Outcome:
    """One page of the run's checkpoints."""
    run = platform.run(ctx.params["run_id"])
    page = paginate(run.checkpoints, ctx.query, CHECKPOINT_LISTING)
    checkpoints = [checkpoint_model(record) for record in page.items]
    return json_outcome(
        CheckpointListResponse(run_id=run.run_id, checkpoints=checkpoints, **page.fields())
    )


def diff_run_checkpoints(platform: Platform, ctx: Context) -> Outcome:
    """The changes between two checkpoints (by default the first and the latest)."""
    run = platform.run(ctx.params["run_id"])
    first = ctx.query.optional_integer("from_sequence")
    last = ctx.query.optional_integer("to_sequence")
    if not run.checkpoints:
        raise _invalid(f"run {run.run_id} has no checkpoints yet (it is {run.status})")
    latest = len(run.checkpoints) - 1
    first, last = (0 if first is None else first), (latest if last is None else last)
    for name, value in (("from_sequence", first), ("to_sequence", last)):
        if value > latest:
            raise _invalid(f"{name} {value} does not exist; the latest is {latest}", parameter=name)
    changes = diff_states(run.checkpoints[first].state, run.checkpoints[last].state)
    return json_outcome(
        CheckpointDiffResponse(
            run_id=run.run_id, from_sequence=first, to_sequence=last, changes=changes
        )
    )


def get_run_policy_report(platform: Platform, ctx: Context) -> Outcome:
    """The run's policy outcomes and the decisions its trace records."""
    return json_outcome(policy_report(platform.run(ctx.params["run_id"])))


def get_run_recovery(platform: Platform, ctx: Context) -> Outcome:
    """What of the run can be recovered, and what to do next."""
    return json_outcome(recovery_model(platform.run(ctx.params["run_id"])))


def list_human_tasks(platform: Platform, ctx: Context) -> Outcome:
    """One page of human tasks, optionally of one status."""
    page = paginate(list(platform.tasks()), ctx.query, TASK_LISTING)
    tasks = [task_model(task) for task in page.items]
    return json_outcome(HumanTaskListResponse(tasks=tasks, **page.fields()))


def get_human_task(platform: Platform, ctx: Context) -> Outcome:
    """One human task."""
    task, _ = platform.task(ctx.params["continuation_id"])
    return json_outcome(task_model(task))


def resume_human_task(platform: Platform, ctx: Context) -> Outcome:
    """Record a reviewer's decision; ``continue`` then carries the run on."""
    task, run = platform.task(ctx.params["continuation_id"])
    request = decode_body(ctx.body, HumanResumeRequest)
    if request.decision not in KNOWN_HUMAN_DECISIONS:
        allowed = ", ".join(sorted(KNOWN_HUMAN_DECISIONS))
        raise _invalid(f"decision must be one of {allowed}", field="decision")
    decision = HumanDecision(
        decision=request.decision,
        reviewer=_given(request.reviewer) or ctx.principal,
        comment=_given(request.comment),
        data=_given(request.data),
    )
    platform.engine.resume(task, run, decision, ctx.now)
    details = {
        "continuation_id": task.continuation_id,
        "decision": decision.decision,
        "reviewer": decision.reviewer,
        **({"comment": decision.comment} if decision.comment is not None else {}),
    }
    platform.audit.record(AUDIT_EVENT_HUMAN_TASK_RESUMED, ctx, run_id=run.run_id, details=details)
    return json_outcome(
        HumanResumeResponse(
            continuation_id=task.continuation_id,
            run_id=run.run_id,
            status=task.status,
            decision=decision.decision,
        )
    )
