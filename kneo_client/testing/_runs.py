"""Runs as the clock drives them: queued, running, paused for review, and how they end.

A run executes its spec's steps one after another. It waits ``queued_seconds`` before it
starts, and each tool, model or fail step takes ``seconds`` (the step's own, else
``step_seconds``). A ``human_review`` step pauses the run (``paused_human_review``) and opens
a human task; resuming the task records the decision, and ``continue`` carries the run on
(approve) or fails it (reject). A fail step fails the run; ``cancel`` stops it at once.

Invariants: a run's history is computed from its schedule, not from when anyone looks, so
every trace event, checkpoint and timestamp is the same however often (or rarely) the run is
polled; ``advance`` replays every transition due up to ``now`` in order, and the emulator
calls it before it handles each request, so a policy change applies to what happens after
it. Sequences of trace events and of checkpoints each start at 0 and have no gaps.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kneo_client.testing._agent_specs import AgentSpec, Step, failure_message, review_prompt
from kneo_client.testing._policies import Policy
from kneo_client.testing._wire import ApiError
from kneo_proto.models import (
    ERROR_CODE_CONFLICT,
    RUN_STATUS_CANCELLED,
    RUN_STATUS_COMPLETED,
    RUN_STATUS_FAILED,
    RUN_STATUS_PAUSED_HUMAN_REVIEW,
    RUN_STATUS_QUEUED,
    RUN_STATUS_RUNNING,
    TERMINAL_RUN_STATUSES,
)

__all__ = ["HumanDecision", "HumanTask", "Run", "RunEngine", "RunTiming", "policy_review_step"]

TASK_CANCELLED = "cancelled"  # an open value: the run was cancelled while its task waited
FAILURE_STEP = "step_failed"
FAILURE_REJECTED = "human_review_rejected"
FAILURE_POLICY = "policy_denied"


@dataclass(frozen=True, slots=True)
class RunTiming:
    """How long runs take, in seconds of the emulator's clock.

    Attributes:
        queued_seconds: From creation until the run starts.
        step_seconds: Duration of a step that does not set its own ``seconds``.
    """

    queued_seconds: float = 0.5
    step_seconds: float = 1.0

    def duration(self, step: Step) -> float:
        """Return how long ``step`` runs."""
        return step.seconds if step.seconds is not None else self.step_seconds

    def estimate(self, steps: tuple[Step, ...]) -> float:
        """Return the running time of ``steps``, review pauses excluded."""
        return sum(self.duration(s) for s in steps if s.kind != "human_review")


class Phase(enum.Enum):
    """What a run does when its ``next_at`` comes."""

    START = "start"
    FINISH_STEP = "finish_step"
    FAIL_STEP = "fail_step"
    WAIT = "wait"
    DONE = "done"


@dataclass
class TraceRecord:
    """One trace event; ``checkpoint`` is the checkpoint taken with it, if any."""

    sequence: int
    event_type: str
    at: float
    data: dict[str, Any]
    checkpoint: int | None = None


@dataclass
class CheckpointRecord:
    """One state snapshot."""

    sequence: int
    at: float
    state: dict[str, Any]
    label: str


@dataclass
class HumanTask:
    """A review pause point of a run."""

    continuation_id: str
    run_id: str
    step: str
    prompt: str
    created_at: float
    updated_at: float
    status: str = "pending"
    decision: str | None = None
    reviewer: str | None = None
    comment: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HumanDecision:
    """A reviewer's decision on a human task."""

    decision: str
    reviewer: str
    comment: str | None = None
    data: dict[str, Any] | None = None


@dataclass
class Run:
    """One run and its whole history."""

    run_id: str
    spec: AgentSpec
    spec_id: str
    steps: tuple[Step, ...]
    environment: str
    created_at: float
    inputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    policy_version: int = 1
    policy_outcomes: list[dict[str, Any]] = field(default_factory=list)
    status: str = RUN_STATUS_QUEUED
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    trace: list[TraceRecord] = field(default_factory=list)
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    tasks: list[HumanTask] = field(default_factory=list)
    index: int = 0
    phase: Phase = Phase.START
    next_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the run can no longer change."""
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def open_task(self) -> HumanTask | None:
        """The task the run waits on while paused, else None."""
        if self.status == RUN_STATUS_PAUSED_HUMAN_REVIEW and self.tasks:
            return self.tasks[-1]
        return None


def policy_review_step(environment: str) -> Step:
    """The review step a ``require_human_review`` policy puts before a run's first step."""
    prompt = f"The {environment} policy requires a review before the run acts. Approve?"
    return Step(name=f"{environment}-policy-review", kind="human_review", prompt=prompt)


def _default_output(step: Step) -> Any:
    if step.output is not None:
        return copy.deepcopy(step.output)
    if step.kind == "tool":
        return {"tool": step.tool, "status": "ok"}
    return {"model": step.model or "default", "text": f"{step.name}: done"}


class RunEngine:
    """Moves runs through their lifecycle.

    Args:
        timing: How long runs take.
        new_id: Returns a fresh ID with the given prefix (for continuation IDs).
        policy_for: Returns the current policy of an environment.
    """

    def __init__(
        self,
        timing: RunTiming,
        new_id: Callable[[str], str],
        policy_for: Callable[[str], Policy | None],
    ) -> None:
        self.timing = timing
        self._new_id = new_id
        self._policy_for = policy_for

    def start(self, run: Run) -> None:
        """Schedule a new (queued) run."""
        run.updated_at = run.created_at
        run.phase = Phase.START
        run.next_at = run.created_at + self.timing.queued_seconds

    def advance(self, run: Run, now: float) -> None:
        """Carry out every transition of ``run`` due at or before ``now``, in order."""
        while run.next_at is not None and run.next_at <= now:
            at, run.next_at = run.next_at, None
            if run.phase is Phase.START:
                self._begin(run, at)
            elif run.phase is Phase.FINISH_STEP:
                self._finish_step(run, at)
            elif run.phase is Phase.FAIL_STEP:
                step = run.steps[run.index]
                self._fail(run, at, FAILURE_STEP, failure_message(step), step.name)

    def cancel(self, run: Run, now: float) -> bool:
        """Cancel ``run`` unless it is terminal; return whether it changed."""
        if run.terminal:
            return False
        task = run.open_task
        if task is not None and task.status == "pending":
            task.status, task.updated_at = TASK_CANCELLED, now
        run.status, run.completed_at = RUN_STATUS_CANCELLED, now
        run.next_at, run.phase = None, Phase.DONE
        self._event(run, "run_cancelled", now, {"step": self._current(run)})
        return True

    def resume(self, task: HumanTask, run: Run, decision: HumanDecision, now: float) -> None:
        """Record ``decision`` on a pending task.

        Raises:
            ApiError: 409 ``conflict`` when the task is not pending.
        """
        if task.status != "pending" or run.open_task is not task:
            message = f"human task {task.continuation_id} is {task.status}, not pending"
            raise ApiError(409, ERROR_CODE_CONFLICT, message)
        task.status, task.updated_at = "resumed", now
        task.decision, task.reviewer = decision.decision, decision.reviewer
        task.comment, task.data = decision.comment, decision.data
        reviewer = decision.reviewer
        data = {"step": task.step, "continuation_id": task.continuation_id, "reviewer": reviewer}
        self._event(run, "human_review_resumed", now, {**data, "decision": decision.decision})

    def continue_(self, run: Run, now: float) -> str:
        """Carry a paused run on after its task was resumed; return the decision applied.

        Raises:
            ApiError: 409 ``conflict`` when the run is not paused or its task is still pending.
        """
        task = run.open_task
        if task is None:
            message = f"run {run.run_id} is {run.status}, not paused"
            raise ApiError(409, ERROR_CODE_CONFLICT, message)
        if task.decision is None:
            message = f"human task {task.continuation_id} is still pending; resume it first"
            details = {"continuation_id": task.continuation_id}
            raise ApiError(409, ERROR_CODE_CONFLICT, message, details)
        if task.decision != "approve":
            message = f"the reviewer chose {task.decision!r}"
            self._fail(run, now, FAILURE_REJECTED, message, task.step)
            return task.decision
        output: dict[str, Any] = {"decision": task.decision, "reviewer": task.reviewer}
        if task.comment is not None:
            output["comment"] = task.comment
        if task.data is not None:
            output["data"] = task.data
        run.status = RUN_STATUS_RUNNING
        self._complete_step(run, now, output)
        return task.decision

    # -- transitions --

    def _current(self, run: Run) -> str | None:
        return run.steps[run.index].name if run.index < len(run.steps) else None

    def _event(self, run: Run, kind: str, at: float, data: dict[str, Any]) -> TraceRecord:
        record = TraceRecord(
            len(run.trace), kind, at, {k: v for k, v in data.items() if v is not None}
        )
        run.trace.append(record)
        run.updated_at = max(run.updated_at, at)
        return record

    def _checkpoint(self, run: Run, at: float, label: str, event: TraceRecord) -> None:
        state = {
            "status": run.status,
            "next_step": self._current(run),
            "completed_steps": list(run.completed),
            "outputs": copy.deepcopy(run.outputs),
            "inputs": copy.deepcopy(run.inputs),
        }
        sequence = len(run.checkpoints)
        run.checkpoints.append(CheckpointRecord(sequence, at, state, label))
        event.checkpoint = sequence
        self._event(
            run, "checkpoint_created", at, {"checkpoint_sequence": sequence, "label": label}
        )

    def _begin(self, run: Run, at: float) -> None:
        run.status, run.started_at = RUN_STATUS_RUNNING, at
        data = {"spec_id": run.spec_id, "environment": run.environment}
        started = self._event(run, "run_started", at, data)
        rule = {"rule": "environment_policy", "allowed": True, "policy_version": run.policy_version}
        self._event(run, "middleware_decision", at, rule)
        self._checkpoint(run, at, "start", started)
        self._begin_step(run, at)

    def _begin_step(self, run: Run, at: float) -> None:
        if run.index >= len(run.steps):
            self._succeed(run, at)
            return
        step = run.steps[run.index]
        data = {"step": step.name, "kind": step.kind, "index": run.index}
        self._event(run, "step_started", at, data)
        if step.kind == "human_review":
            self._pause(run, step, at)
        elif step.kind == "tool" and not self._tool_allowed(run, step, at):
            message = f"tool {step.tool} is not allowed in {run.environment}"
            self._fail(run, at, FAILURE_POLICY, message, step.name)
        else:
            self._act(run, step, at)

    def _act(self, run: Run, step: Step, at: float) -> None:
        if step.kind == "tool":
            call = {"step": step.name, "tool": step.tool, "arguments": run.inputs}
            self._event(run, "tool_call", at, call)
        elif step.kind == "model":
            call = {"step": step.name, "model": step.model or "default", "prompt": step.prompt}
            self._event(run, "model_call", at, call)
        run.phase = Phase.FAIL_STEP if step.kind == "fail" else Phase.FINISH_STEP
        run.next_at = at + self.timing.duration(step)

    def _tool_allowed(self, run: Run, step: Step, at: float) -> bool:
        policy = self._policy_for(run.environment)
        allowed = policy is None or policy.allows_tool(step.tool or "")
        rule = {"rule": "allowed_tools", "step": step.name, "tool": step.tool, "allowed": allowed}
        self._event(run, "middleware_decision", at, rule)
        return allowed

    def _pause(self, run: Run, step: Step, at: float) -> None:
        task = HumanTask(self._new_id("cont"), run.run_id, step.name, review_prompt(step), at, at)
        run.tasks.append(task)
        run.status, run.phase = RUN_STATUS_PAUSED_HUMAN_REVIEW, Phase.WAIT
        data = {"step": step.name, "continuation_id": task.continuation_id, "prompt": task.prompt}
        requested = self._event(run, "human_review_requested", at, data)
        self._checkpoint(run, at, f"{step.name}: awaiting review", requested)

    def _finish_step(self, run: Run, at: float) -> None:
        self._complete_step(run, at, _default_output(run.steps[run.index]))

    def _complete_step(self, run: Run, at: float, output: Any) -> None:
        step = run.steps[run.index]
        run.outputs[step.name] = output
        run.completed.append(step.name)
        run.index += 1
        done = self._event(run, "step_completed", at, {"step": step.name, "output": output})
        self._checkpoint(run, at, step.name, done)
        self._begin_step(run, at)

    def _succeed(self, run: Run, at: float) -> None:
        run.status, run.completed_at, run.phase = RUN_STATUS_COMPLETED, at, Phase.DONE
        self._event(run, "run_completed", at, {"steps": len(run.completed)})

    def _fail(self, run: Run, at: float, code: str, message: str, step: str | None) -> None:
        run.status, run.completed_at, run.error = RUN_STATUS_FAILED, at, (code, message)
        run.next_at, run.phase = None, Phase.DONE
        self._event(run, "run_failed", at, {"step": step, "code": code, "message": message})
