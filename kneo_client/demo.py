"""The README's main command: a realistic kneo-client workflow, printed step by step.

With ``KNEO_URL`` and ``KNEO_API_KEY`` set, it runs against that platform. Otherwise it
starts the platform emulator in-process (``kneo_client.testing``: a real HTTP server on
127.0.0.1, on real time with short run timings) and runs against it. The workflow:
readiness; validate and compile a spec that asks for a human review (and see a broken copy
rejected with line and column); start a run and wait until it pauses for the review;
approve the human task and continue the run to completion; read its trace and its audit
trail; and, on the emulator, watch a run creation survive an injected 503 by retrying with
the same idempotency key.

Run it with ``python -m kneo_client.demo``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from kneo_client import KneoError, SyncKneoClient
from kneo_client.testing import Emulator, Fault, RunTiming, SystemClock, serve_emulator

DEMO_SPEC_NAME = "support-triage-demo"
DEMO_SPEC = f"""\
name: {DEMO_SPEC_NAME}
description: Look up the customer, draft a reply, and send it once a human approves.
steps:
  - name: lookup-customer
    kind: tool
    tool: crm.lookup
  - name: draft-reply
    kind: model
    prompt: Draft a reply to the customer's ticket.
  - name: approve-reply
    kind: human_review
    prompt: Send this reply to the customer?
  - name: send-reply
    kind: tool
    tool: tickets.update
"""
BROKEN_SPEC = DEMO_SPEC.replace("kind: model", "kind: teleport")
POLL_SECONDS = 0.25
WAIT_LIMIT = 60.0
PAUSED = frozenset({"completed", "failed", "cancelled", "paused_human_review"})
# Short enough that the whole demo takes a few seconds, long enough to watch a run move.
DEMO_TIMING = RunTiming(queued_seconds=0.3, step_seconds=0.4)


def step(number: int, title: str) -> None:
    """Print a step's heading."""
    print(f"\n{number}. {title}")


def say(*parts: Any) -> None:
    """Print an indented line."""
    print("  ", *parts)


def check_ready(client: SyncKneoClient) -> None:
    """Probe readiness and show what the platform reports."""
    step(1, "Is the platform ready?")
    ready = client.platform.health.readyz.raw()
    health = ready.parsed
    checks = getattr(health.metadata, "checks", None) or {}
    say(f"ok={health.ok}, {health.service} {health.version} (request ID {ready.request_id})")
    if checks:
        say(
            "checks:",
            ", ".join(f"{name} {'ok' if c.ok else 'FAILING'}" for name, c in checks.items()),
        )


def check_spec(client: SyncKneoClient) -> str | None:
    """Validate the demo spec (and a broken copy), compile it; return its spec ID."""
    step(2, "Validate the spec (four steps, one of them a human review)")
    validated = client.agent.specs.validate({"spec": DEMO_SPEC})
    say(f"valid={validated.valid}, {len(validated.diagnostics or [])} diagnostics")
    broken = client.agent.specs.validate({"spec": BROKEN_SPEC})
    say(f"a copy with 'kind: teleport' is valid={broken.valid}:")
    for d in broken.diagnostics or []:
        say(f"  line {d.line}, column {d.column}: {d.message} [{d.code}]")
    step(3, "Compile it")
    compiled = client.agent.specs.compile({"spec": DEMO_SPEC})
    if not compiled.ok:
        for d in compiled.diagnostics or []:
            say(f"line {d.line}, column {d.column}: {d.message}")
        return None
    # A platform that does not say under which ID it registered the spec: use its name.
    spec_id = compiled.spec_id if isinstance(compiled.spec_id, str) else DEMO_SPEC_NAME
    say(f"ok={compiled.ok}, registered as spec_id={spec_id!r}")
    return spec_id


def run_with_review(client: SyncKneoClient, spec_id: str) -> str:
    """Start a run, approve its human review, continue it; return the run ID."""
    step(4, "Start a run and wait for it")
    run = client.platform.runs.create({"spec_id": spec_id})
    started = time.monotonic()
    say(f"created {run.run_id}: {run.status}")
    status = client.platform.runs.wait_for_completion(
        run.run_id, poll_interval=POLL_SECONDS, timeout=WAIT_LIMIT, terminal_statuses=PAUSED
    )
    say(f"{run.run_id}: {status.status} after {time.monotonic() - started:.1f} s")
    if status.status != "paused_human_review" or not status.continuation_id:
        say("no human review was requested")
        return run.run_id
    step(5, "Handle the human review task")
    task = client.platform.human_tasks.get(str(status.continuation_id))
    say(f"task {task.continuation_id} ({task.status}): {task.prompt!r}")
    resumed = client.platform.human_tasks.resume(
        task.continuation_id, {"decision": "approve", "comment": "Reads well; send it."}
    )
    say(f"resumed with decision={resumed.decision!r}: {resumed.status}")
    continued = client.platform.runs.continue_(run.run_id)
    say(f"continued {run.run_id}: {continued.status}")
    started = time.monotonic()
    done = client.platform.runs.wait_for_completion(
        run.run_id, poll_interval=POLL_SECONDS, timeout=WAIT_LIMIT
    )
    say(f"{run.run_id}: {done.status} after {time.monotonic() - started:.1f} s")
    if isinstance(done.outputs, dict):
        say("outputs of steps:", ", ".join(done.outputs))
    return run.run_id


def brief(data: Any, width: int = 60) -> str:
    """Return the short scalar fields of ``data`` as ``k=v`` pairs, whole, up to ``width``."""
    shown = ""
    for key, value in (data if isinstance(data, dict) else {}).items():
        pair = f"{key}={value}"
        if isinstance(value, dict | list) or len(shown) + len(pair) + 1 > width:
            continue
        shown = f"{shown} {pair}" if shown else pair
    return shown


def show_trace(client: SyncKneoClient, run_id: str) -> None:
    """Print the run's trace, one event a line."""
    trace = client.platform.runs.trace(run_id, limit=100)
    step(6, f"Read the trace ({trace.total} events)")
    for event in trace.events:
        say(f"{event.sequence:>3} {event.event_type:<23} {brief(event.data)}")


def show_audit(client: SyncKneoClient, run_id: str) -> None:
    """Print the run's audit trail."""
    audit = client.platform.audit.list(run_id=run_id, sort_order="asc")
    step(7, f"Read the audit trail ({audit.total} events for {run_id})")
    for event in audit.events:
        request = f" (request {event.request_id})" if isinstance(event.request_id, str) else ""
        say(f"{event.timestamp:%H:%M:%S} {event.event_type:<20} by {event.principal}{request}")


def survive_503(client: SyncKneoClient, emulator: Emulator | None, spec_id: str) -> None:
    """Create a run while the emulator answers the first attempt with a 503."""
    step(8, "Survive an injected 503")
    if emulator is None:
        say("skipped: injecting faults needs the emulator (unset KNEO_URL to see it)")
        return
    emulator.faults.script("POST", "/v1/runs", Fault.error(503))
    before = emulator.counters.requests["/v1/runs"]
    say("the emulator will answer the next POST /v1/runs with 503 Service Unavailable")
    created = client.platform.runs.create.raw({"spec_id": spec_id})
    key = created.idempotency_key or ""
    say(
        f"created {created.parsed.run_id} after {created.attempts} attempts,"
        f" each with Idempotency-Key {key}"
    )
    requests = emulator.counters.requests["/v1/runs"] - before
    executions = emulator.counters.executions[key]
    times = "once" if executions == 1 else f"{executions} times"
    say(f"the emulator saw {requests} requests and created the run {times}")


def tour(client: SyncKneoClient, emulator: Emulator | None) -> None:
    """Walk the whole workflow with ``client``."""
    check_ready(client)
    spec_id = check_spec(client)
    if spec_id is None:
        return
    run_id = run_with_review(client, spec_id)
    show_trace(client, run_id)
    show_audit(client, run_id)
    survive_503(client, emulator, spec_id)


def main() -> int:
    """Run the demo against $KNEO_URL, or against an in-process emulator; return the exit code."""
    started = time.monotonic()
    try:
        if os.environ.get("KNEO_URL") and os.environ.get("KNEO_API_KEY"):
            print(f"kneo-client demo against {os.environ['KNEO_URL']}")
            with SyncKneoClient.from_profile() as client:
                tour(client, None)
        else:
            emulator = Emulator(clock=SystemClock(), run_timing=DEMO_TIMING)
            with serve_emulator(emulator) as running, SyncKneoClient(running.profile()) as client:
                print(f"kneo-client demo against the platform emulator at {running.url}")
                print("(set KNEO_URL and KNEO_API_KEY to run it against a real platform)")
                tour(client, emulator)
    except KneoError as exc:
        print(f"\nthe demo stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"\ndone in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
