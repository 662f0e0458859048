"""Micro-benchmarks of the Sans-I/O core: what kneo_proto adds to each request and response.

Run from the repository root::

    python -m benchmarks.bench_core            # about 20 s, markdown table on stdout
    python -m benchmarks.bench_core --quick    # about 2 s smoke run (CI)
    python -m benchmarks.bench_core --json     # the same figures as JSON

Each case runs a batch of ``inner`` operations between two ``time.perf_counter_ns`` reads and
records the mean per operation; the median and the 90th percentile are taken over ``samples``
such batches. Anything a case needs but does not measure (calls waiting for a response, the
bodies) is prepared before the clock starts. The garbage collector is off while a batch runs,
as in ``timeit``. Bodies are encoded with msgspec from the ``kneo_proto.models`` Structs, and
every case checks once, untimed, that its call really finishes, so a model change can never
leave the script timing the error path. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

import kneo_proto
from kneo_proto import Call, ClientConfig, Clock, Finished, Operation, Send, endpoints
from kneo_proto.models import (
    KNOWN_AUDIT_EVENT_TYPES,
    RUN_STATUS_COMPLETED,
    UNSET,
    AuditEvent,
    AuditEventListResponse,
    RunStatusResponse,
)

__all__ = ["main"]

CLOCK = Clock(time.monotonic, time.time)  # built once, as the drivers do
CONFIG = ClientConfig(base_url="https://kneo.example.com", api_key="kneo_bench_key_0123456789")
PAGE_EVENTS = 1000
EPOCH = datetime.datetime(2026, 5, 4, 9, 30, tzinfo=datetime.UTC)

# Runs ``inner`` operations and returns every outcome: they are freed after the clock stops,
# so no case pays for deallocating its results and the comparisons stay like for like.
Batch = Callable[[], list[object]]


@dataclass(frozen=True, slots=True)
class Plan:
    """How often to run one case: ``samples`` timed batches of ``inner`` operations each."""

    samples: int
    inner: int

    def quick(self) -> Plan:
        return Plan(max(10, self.samples // 10), max(1, self.inner // 4))


@dataclass(frozen=True, slots=True)
class Result:
    """The figures of one case, in microseconds per operation."""

    key: str
    case: str
    body_bytes: int | None
    median_us: float
    p90_us: float
    samples: int
    inner: int


# -- bodies --------------------------------------------------------------------------------


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(96):024x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def run_status_body() -> bytes:
    """A completed run as GET /v1/runs/{run_id} returns it, about 0.5 KB."""
    rng = random.Random(7)
    run = RunStatusResponse(
        run_id=_id(rng, "run"),
        spec_id="spec_invoice_triage",
        status=RUN_STATUS_COMPLETED,
        environment="prod",
        created_at=EPOCH,
        updated_at=EPOCH + datetime.timedelta(seconds=41, microseconds=512_337),
        started_at=EPOCH + datetime.timedelta(seconds=1, microseconds=20_114),
        completed_at=EPOCH + datetime.timedelta(seconds=41, microseconds=512_337),
        outputs={
            "decision": "approve",
            "confidence": 0.93,
            "invoice_id": "INV-2026-004417",
            "amount": {"value": "1249.50", "currency": "EUR"},
            "summary": "Matched purchase order PO-88213; no policy flags were raised.",
            "tags": ["finance", "auto-approved", "eu-west"],
            "steps": 7,
        },
    )
    return msgspec.json.encode(run)


def _audit_details(rng: random.Random, event_type: str) -> dict[str, Any]:
    if event_type.startswith("run."):
        labels = {"team": rng.choice(["billing", "support", "ops"]), "tier": "gold"}
        return {"spec_id": "spec_invoice_triage", "environment": "prod", "labels": labels}
    source_ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return {"source_ip": source_ip, "version": rng.randrange(1, 40), "changed_fields": ["rules"]}


def audit_events(events: int = PAGE_EVENTS) -> list[AuditEvent]:
    """``events`` audit events, newest first, about 0.3 KB each once encoded."""
    rng = random.Random(11)
    types = sorted(KNOWN_AUDIT_EVENT_TYPES)
    items = []
    for index in range(events):
        event_type = types[index % len(types)]
        about_run = event_type.startswith(("run.", "human_task."))
        items.append(
            AuditEvent(
                event_id=_id(rng, "evt"),
                event_type=event_type,
                timestamp=EPOCH - datetime.timedelta(seconds=index * 13, microseconds=index),
                principal=rng.choice(["user:alice@example.com", "key:ci-deploy", "svc:scheduler"]),
                run_id=_id(rng, "run") if about_run else UNSET,
                request_id=_uuid(rng),
                details=_audit_details(rng, event_type),
            )
        )
    return items


def audit_page_body(events: int = PAGE_EVENTS) -> bytes:
    """A full page of GET /v1/audit-events, about 0.3 KB per event."""
    page = AuditEventListResponse(
        count=events,
        total=48_213,
        limit=events,
        offset=0,
        sort_by="timestamp",
        sort_order="desc",
        events=audit_events(events),
    )
    return msgspec.json.encode(page)


def response_headers(body: bytes, request_id: str) -> list[tuple[bytes, bytes]]:
    """Headers as httpcore hands them to a driver, echoing the call's request ID."""
    return [
        (b"Date", b"Mon, 04 May 2026 09:30:41 GMT"),
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(body)).encode()),
        (b"X-Request-ID", request_id.encode()),
        (b"Server", b"kneo-platform"),
    ]


# -- cases ---------------------------------------------------------------------------------


def build_batch(make: Callable[[], Operation[Any]], inner: int) -> Batch:
    """Build ``inner`` operations and their calls, and ask each call for its first Send."""

    def run() -> list[object]:
        return [Call(make(), CONFIG, clock=CLOCK).next_action() for _ in range(inner)]

    return run


def awaiting_calls(make: Callable[[], Operation[Any]], count: int) -> list[Call[Any]]:
    """Calls that have sent their first request and wait for its response."""
    calls = [Call(make(), CONFIG, clock=CLOCK) for _ in range(count)]
    for call in calls:
        call.next_action()
    return calls


def receive_batch(make: Callable[[], Operation[Any]], body: bytes, inner: int) -> Batch:
    """Hand ``body`` to ``inner`` waiting calls, each then asked for its outcome."""
    calls = awaiting_calls(make, inner)
    headers = [response_headers(body, call.request_id) for call in calls]

    def run() -> list[object]:
        outcomes: list[object] = []
        for call, call_headers in zip(calls, headers, strict=True):
            call.receive_response(200, call_headers, body)
            outcomes.append(call.next_action())
        return outcomes

    return run


def repeat_batch(decode: Callable[[bytes], object], body: bytes, inner: int) -> Batch:
    def run() -> list[object]:
        return [decode(body) for _ in range(inner)]

    return run


def _create_run() -> Operation[Any]:
    inputs = {"invoice_id": "INV-2026-004417", "amount": 1249.5, "currency": "EUR"}
    return endpoints.create_run({"spec_id": "s", "inputs": inputs})


def _decode_page_struct(body: bytes) -> object:
    return msgspec.json.decode(body, type=AuditEventListResponse)


@dataclass(frozen=True, slots=True)
class Case:
    """One measured thing: ``prepare(inner)`` (untimed) returns the batch to time."""

    key: str
    title: str
    plan: Plan
    prepare: Callable[[int], Batch]
    expect: type
    body_bytes: int | None = None


def _get_run() -> Operation[Any]:
    return endpoints.get_run("run_123")


def _list_page() -> Operation[Any]:
    return endpoints.list_audit_events(limit=PAGE_EVENTS)


def request_cases() -> list[Case]:
    """Building requests and decoding a small response: the per-request overhead."""
    small = run_status_body()
    return [
        Case(
            "build_get_run",
            "build GET get_run + first Send",
            Plan(250, 200),
            lambda n: build_batch(_get_run, n),
            expect=Send,
        ),
        Case(
            "build_create_run",
            "build POST create_run (body, key) + first Send",
            Plan(250, 200),
            lambda n: build_batch(_create_run, n),
            expect=Send,
        ),
        Case(
            "decode_run_status",
            "RunStatusResponse through Call -> Finished",
            Plan(250, 200),
            lambda n: receive_batch(_get_run, small, n),
            expect=Finished,
            body_bytes=len(small),
        ),
    ]


def page_cases() -> list[Case]:
    """One 1000-event page three ways, compared with each other in the same run."""
    page = audit_page_body()
    return [
        Case(
            "page_call",
            "1000 audit events through Call -> Finished",
            Plan(1000, 1),
            lambda n: receive_batch(_list_page, page, n),
            expect=Finished,
            body_bytes=len(page),
        ),
        Case(
            "page_struct",
            "1000 audit events, msgspec.json.decode(type=...)",
            Plan(1000, 1),
            lambda n: repeat_batch(_decode_page_struct, page, n),
            expect=AuditEventListResponse,
            body_bytes=len(page),
        ),
        Case(
            "page_json_loads",
            "1000 audit events, json.loads into dicts",
            Plan(1000, 1),
            lambda n: repeat_batch(json.loads, page, n),
            expect=dict,
            body_bytes=len(page),
        ),
    ]


# -- timing --------------------------------------------------------------------------------


def time_batch(batch: Batch) -> tuple[int, list[object]]:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        outcomes = batch()
        return time.perf_counter_ns() - start, outcomes
    finally:
        gc.enable()


def check(case: Case, plan: Plan) -> None:
    """Warm the case up and make sure it ends the way it should (a Send, a Finished, ...)."""
    for outcome in time_batch(case.prepare(plan.inner))[1]:
        if not isinstance(outcome, case.expect):
            sys.exit(f"{case.key}: expected {case.expect.__name__}, got {outcome!r:.300}")


def summarize(case: Case, plan: Plan, per_op_ns: list[float]) -> Result:
    deciles = statistics.quantiles(per_op_ns, n=10, method="inclusive")
    return Result(
        key=case.key,
        case=case.title,
        body_bytes=case.body_bytes,
        median_us=statistics.median(per_op_ns) / 1000,
        p90_us=deciles[8] / 1000,
        samples=plan.samples,
        inner=plan.inner,
    )


def measure(planned: list[tuple[Case, Plan]]) -> list[Result]:
    """Time the cases one sample each in turn, so that drift in the machine's load hits all
    alike, in a fresh shuffled order each round, so that no case always runs in the memory
    and caches one particular other case leaves behind.
    """
    for case, plan in planned:
        check(case, plan)
    gc.collect()
    rng = random.Random(3)
    per_op_ns: dict[str, list[float]] = {case.key: [] for case, _ in planned}
    for round_ in range(max(plan.samples for _, plan in planned)):
        for case, plan in rng.sample(planned, len(planned)):
            if round_ < plan.samples:
                elapsed = time_batch(case.prepare(plan.inner))[0]
                per_op_ns[case.key].append(elapsed / plan.inner)
    return [summarize(case, plan, per_op_ns[case.key]) for case, plan in planned]


def ratios(results: dict[str, Result]) -> dict[str, float]:
    """Ratios of the 1000-event medians; json.loads is the floor a user would otherwise write."""
    call, struct = results["page_call"].median_us, results["page_struct"].median_us
    loads = results["page_json_loads"].median_us
    return {
        "msgspec-struct / json.loads": struct / loads,
        "through-Call / json.loads": call / loads,
        "through-Call / msgspec-struct": call / struct,
    }


# -- report --------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    uname = platform.uname()
    return {
        "cpu": cpu_name(),
        "system": f"{uname.system} {uname.release} {uname.machine}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "msgspec": msgspec.__version__,
        "kneo-client": kneo_proto.__version__,
    }


def _us(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _size(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1000:.0f} kB"


def markdown(
    info: dict[str, str], run: dict[str, Any], results: list[Result], rates: dict[str, float]
) -> str:
    lines = ["# kneo_proto core benchmark", ""]
    lines += [f"- {name}: {value}" for name, value in info.items()]
    lines.append(f"- run: {run['mode']}, {run['wall_seconds']:.1f} s")
    lines += ["", "| case | body | median µs | p90 µs | samples x inner |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for r in results:
        body = "" if r.body_bytes is None else _size(r.body_bytes)
        row = [r.case, body, _us(r.median_us), _us(r.p90_us), f"{r.samples} x {r.inner}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| ratio of medians (1000 events) | ratio |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in rates.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_core", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="~2 s smoke run (CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results: list[Result] = []
    for group in (request_cases(), page_cases()):
        results += measure([(c, c.plan.quick() if args.quick else c.plan) for c in group])
    wall_seconds = round(time.perf_counter() - started, 2)
    run: dict[str, Any] = {
        "mode": "quick" if args.quick else "default",
        "wall_seconds": wall_seconds,
    }
    info, rates = machine(), ratios({r.key: r for r in results})
    if args.json:
        payload = {"machine": info, "run": run, "results": [asdict(r) for r in results]}
        print(json.dumps(payload | {"ratios": rates}, indent=2))
    else:
        print(markdown(info, run, results, rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
