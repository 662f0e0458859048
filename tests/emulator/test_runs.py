"""Runs on the emulator's clock: lifecycle, human review, and history views that agree."""

from __future__ import annotations

from typing import Any

import pytest

from kneo_client.testing._emulator import Emulator
from kneo_client.testing._runs import RunTiming
from kneo_proto.models import (
    CheckpointDiffResponse,
    CheckpointListResponse,
    HumanResumeResponse,
    HumanTaskListResponse,
    HumanTaskResponse,
    RunCreateResponse,
    RunRecoveryResponse,
    RunReplayResponse,
    RunStatusResponse,
    TraceResponse,
)
from tests.emulator.harness import Script, given


def start(script: Script, spec_id: str, **extra: Any) -> str:
    created = script.ok("POST", "/v1/runs", {"spec_id": spec_id, **extra}, model=RunCreateResponse)
    assert created.status == "queued"
    assert created.spec_id == spec_id
    return created.run_id


def status(script: Script, run_id: str) -> RunStatusResponse:
    return script.ok("GET", f"/v1/runs/{run_id}", model=RunStatusResponse)


def trace(script: Script, run_id: str, query: str = "") -> list[str]:
    page = script.ok("GET", f"/v1/runs/{run_id}/trace?limit=1000{query}", model=TraceResponse)
    return [e.event_type for e in page.events]


def test_run_moves_from_queued_to_running_to_completed_with_the_clock() -> None:
    script = Script(Emulator(run_timing=RunTiming(queued_seconds=1, step_seconds=2)))
    run_id = start(script, "my-spec")  # two steps: 1 s queued + 2 x 2 s
    assert status(script, run_id).status == "queued"
    script.advance(1)
    running = status(script, run_id)
    assert running.status == "running"
    assert running.started_at == given(running.created_at).replace(second=1)
    script.advance(3.9)
    assert status(script, run_id).status == "running"
    script.advance(0.1)
    done = status(script, run_id)
    assert done.status == "completed"
    assert (given(done.completed_at) - given(done.created_at)).total_seconds() == 5
    assert done.outputs == {
        "think": {"model": "default", "text": "think: done"},
        "act": {"tool": "http.get", "status": "ok"},
    }


def test_run_history_does_not_depend_on_how_often_it_is_polled() -> None:
    polled, idle = Script(), Script()
    polled_id, idle_id = start(polled, "nightly-report"), start(idle, "nightly-report")
    for _ in range(40):
        polled.advance(0.25)
        status(polled, polled_id)
    idle.advance(10)
    assert polled.call("GET", f"/v1/runs/{polled_id}/trace").response.body == (
        idle.call("GET", f"/v1/runs/{idle_id}/trace").response.body
    )


def test_run_trace_tells_the_whole_story_in_sequence() -> None:
    script = Script()
    run_id = start(script, "my-spec")
    script.advance(60)
    page = script.ok("GET", f"/v1/runs/{run_id}/trace?sort_by=sequence", model=TraceResponse)
    assert [e.sequence for e in page.events] == list(range(given(page.total)))
    assert [e.event_type for e in page.events] == [
        "run_started",
        "middleware_decision",
        "checkpoint_created",
        "step_started",
        "model_call",
        "step_completed",
        "checkpoint_created",
        "step_started",
        "middleware_decision",
        "tool_call",
        "step_completed",
        "checkpoint_created",
        "run_completed",
    ]
    assert trace(script, run_id, "&event_type=tool_call") == ["tool_call"]
    newest = script.ok(
        "GET", f"/v1/runs/{run_id}/trace?sort_order=desc&limit=1", model=TraceResponse
    )
    assert newest.events[0].event_type == "run_completed"


def test_fail_step_fails_the_run_and_recovery_says_restart() -> None:
    script = Script()
    run_id = start(script, "always-fails")
    script.advance(60)
    failed = status(script, run_id)
    assert failed.status == "failed"
    assert (given(failed.error).code, given(failed.error).message) == (
        "step_failed",
        "the upstream service answered 500",
    )
    assert trace(script, run_id)[-1] == "run_failed"
    recovery = script.ok("GET", f"/v1/runs/{run_id}/recovery", model=RunRecoveryResponse)
    checkpoints = script.ok("GET", f"/v1/runs/{run_id}/checkpoints", model=CheckpointListResponse)
    assert recovery.recoverable
    assert recovery.recommended_action == "restart"
    assert recovery.last_checkpoint_sequence == checkpoints.checkpoints[-1].sequence == 1
    assert checkpoints.checkpoints[-1].label == "fetch"


def test_cancel_stops_a_live_run_and_leaves_a_finished_one_alone() -> None:
    script = Script()
    live, finished = start(script, "nightly-report"), start(script, "my-spec")
    script.advance(2)
    cancelled = script.ok("POST", f"/v1/runs/{live}/cancel", model=RunStatusResponse)
    assert cancelled.status == "cancelled"
    script.advance(60)
    assert status(script, live).status == "cancelled"
    assert trace(script, live)[-1] == "run_cancelled"
    unchanged = script.ok("POST", f"/v1/runs/{finished}/cancel", model=RunStatusResponse)
    assert unchanged.status == "completed"


def pause(script: Script, spec_id: str = "support-triage") -> tuple[str, str]:
    run_id = start(script, spec_id)
    script.advance(60)
    paused = status(script, run_id)
    assert paused.status == "paused_human_review"
    assert isinstance(paused.continuation_id, str)
    return run_id, paused.continuation_id


def test_human_review_pauses_the_run_and_opens_a_task() -> None:
    script = Script()
    run_id, continuation_id = pause(script)
    task = script.ok("GET", f"/v1/human-tasks/{continuation_id}", model=HumanTaskResponse)
    assert (task.run_id, task.status, task.prompt) == (
        run_id,
        "pending",
        "Approve the drafted reply before it is sent?",
    )
    listed = script.ok("GET", "/v1/human-tasks?status=pending", model=HumanTaskListResponse)
    assert [t.continuation_id for t in listed.tasks] == [continuation_id]
    assert trace(script, run_id)[-2:] == ["human_review_requested", "checkpoint_created"]
    script.advance(3600)
    assert status(script, run_id).status == "paused_human_review"  # time alone never resumes it


def test_approved_review_and_continue_complete_the_run() -> None:
    script = Script()
    run_id, continuation_id = pause(script)
    resumed = script.ok(
        "POST",
        f"/v1/human-tasks/{continuation_id}/resume",
        {"decision": "approve", "comment": "looks right", "data": {"tone": "warm"}},
        model=HumanResumeResponse,
    )
    assert (resumed.status, resumed.decision) == ("resumed", "approve")
    assert status(script, run_id).status == "paused_human_review"  # resume only records it
    carried = script.ok("POST", f"/v1/runs/{run_id}/continue", model=RunCreateResponse)
    assert carried.status == "running"
    script.advance(60)
    done = status(script, run_id)
    assert done.status == "completed"
    assert given(done.outputs)["approve-reply"] == {
        "decision": "approve",
        "reviewer": "operator",
        "comment": "looks right",
        "data": {"tone": "warm"},
    }
    assert "human_review_resumed" in trace(script, run_id)


def test_rejected_review_fails_the_run_on_continue() -> None:
    script = Script()
    run_id, continuation_id = pause(script)
    script.call("POST", f"/v1/human-tasks/{continuation_id}/resume", {"decision": "reject"})
    carried = script.ok("POST", f"/v1/runs/{run_id}/continue", model=RunCreateResponse)
    assert carried.status == "failed"
    failed = status(script, run_id)
    assert given(failed.error).code == "human_review_rejected"


def test_continue_and_resume_refuse_out_of_order_calls() -> None:
    script = Script()
    run_id, continuation_id = pause(script)
    error = script.fails("POST", f"/v1/runs/{run_id}/continue", status=409, code="conflict")
    assert error.details == {"continuation_id": continuation_id}
    script.fails(
        "POST",
        f"/v1/human-tasks/{continuation_id}/resume",
        {"decision": "maybe"},
        status=422,
        code="validation_error",
    )
    resume = f"/v1/human-tasks/{continuation_id}/resume"
    script.call("POST", resume, {"decision": "approve"})
    script.fails("POST", resume, {"decision": "approve"}, status=409, code="conflict")
    script.call("POST", f"/v1/runs/{run_id}/continue")
    script.fails("POST", f"/v1/runs/{run_id}/continue", status=409, code="conflict")
    script.fails("GET", "/v1/human-tasks/cont-999999", status=404, code="not_found")


def test_cancelling_a_paused_run_closes_its_task() -> None:
    script = Script()
    run_id, continuation_id = pause(script)
    script.call("POST", f"/v1/runs/{run_id}/cancel")
    task = script.ok("GET", f"/v1/human-tasks/{continuation_id}", model=HumanTaskResponse)
    assert task.status == "cancelled"
    script.fails(
        "POST",
        f"/v1/human-tasks/{continuation_id}/resume",
        {"decision": "approve"},
        status=409,
        code="conflict",
    )


def test_replay_names_the_checkpoint_each_completed_step_produced() -> None:
    script = Script()
    run_id = start(script, "nightly-report")
    script.advance(60)
    replay = script.ok("GET", f"/v1/runs/{run_id}/replay", model=RunReplayResponse)
    checkpoints = script.ok("GET", f"/v1/runs/{run_id}/checkpoints", model=CheckpointListResponse)
    labels = {c.sequence: c.label for c in checkpoints.checkpoints}
    completed = [s for s in replay.steps if s.event_type == "step_completed"]
    assert [(s.step, labels[given(s.checkpoint_sequence)]) for s in completed] == [
        ("query", "query"),
        ("summarise", "summarise"),
        ("publish", "publish"),
    ]
    assert [s.sequence for s in replay.steps] == list(range(len(replay.steps)))
    assert replay.status == "completed"


def test_checkpoint_diff_shows_what_changed_between_snapshots() -> None:
    script = Script()
    run_id = start(script, "my-spec")
    script.advance(60)
    diff = script.ok(
        "GET",
        f"/v1/runs/{run_id}/checkpoints/diff?from_sequence=0&to_sequence=1",
        model=CheckpointDiffResponse,
    )
    changes = {(c.path, c.op): (c.before, c.after) for c in diff.changes}
    assert changes[("/next_step", "replace")] == ("think", "act")
    assert ("/completed_steps/0", "add") in changes
    assert ("/outputs/think", "add") in changes
    whole = script.ok("GET", f"/v1/runs/{run_id}/checkpoints/diff", model=CheckpointDiffResponse)
    assert (whole.from_sequence, whole.to_sequence) == (0, 2)
    backwards = script.ok(
        "GET",
        f"/v1/runs/{run_id}/checkpoints/diff?from_sequence=2&to_sequence=0",
        model=CheckpointDiffResponse,
    )
    assert ("/outputs/act", "remove") in {(c.path, c.op) for c in backwards.changes}


@pytest.mark.parametrize(
    "query", ["from_sequence=9", "to_sequence=3", "from_sequence=-1", "to_sequence=x"]
)
def test_checkpoint_diff_rejects_sequences_that_do_not_exist(query: str) -> None:
    script = Script()
    run_id = start(script, "my-spec")
    script.advance(60)
    script.fails(
        "GET", f"/v1/runs/{run_id}/checkpoints/diff?{query}", status=422, code="validation_error"
    )


def test_queued_run_has_no_checkpoints_to_diff_and_nothing_to_recover() -> None:
    script = Script()
    run_id = start(script, "my-spec")
    script.fails("GET", f"/v1/runs/{run_id}/checkpoints/diff", status=422, code="validation_error")
    recovery = script.ok("GET", f"/v1/runs/{run_id}/recovery", model=RunRecoveryResponse)
    assert (recovery.recoverable, recovery.recommended_action) == (False, "none")


def test_paused_run_recovery_recommends_continue() -> None:
    script = Script()
    run_id, _ = pause(script)
    recovery = script.ok("GET", f"/v1/runs/{run_id}/recovery", model=RunRecoveryResponse)
    assert (recovery.recoverable, recovery.recommended_action) == (True, "continue")


def test_run_policy_report_lists_the_outcomes_and_the_decisions_in_the_trace() -> None:
    script = Script()
    run_id = start(script, "nightly-report")
    script.advance(60)
    report = script.ok("GET", f"/v1/runs/{run_id}/policy-report", model=dict[str, Any])
    assert report["allowed"] is True
    assert report["environment"] == "dev"
    assert [d["rule"] for d in report["decisions"]] == [
        "environment_policy",
        "allowed_tools",
        "allowed_tools",
    ]
    page = script.ok(
        "GET", f"/v1/runs/{run_id}/trace?event_type=middleware_decision", model=TraceResponse
    )
    assert [d["sequence"] for d in report["decisions"]] == [e.sequence for e in page.events]


def test_unknown_run_is_404_on_every_run_endpoint() -> None:
    script = Script()
    for suffix in (
        "",
        "/trace",
        "/checkpoints",
        "/checkpoints/diff",
        "/replay",
        "/recovery",
        "/policy-report",
    ):
        script.fails("GET", f"/v1/runs/run-404{suffix}", status=404, code="not_found")
    for action in ("cancel", "continue"):
        script.fails("POST", f"/v1/runs/run-404/{action}", status=404, code="not_found")
