"""kneo_client.otel: call events become OpenTelemetry spans and the duration histogram.

The unit tests feed hand-built events to an observer with private providers (the global
ones stay untouched); the emulator tests run many calls with faults through both clients.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import Any

import anyio
import anyio.to_thread
import msgspec
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient
from kneo_client.otel import DURATION_BUCKETS, OpenTelemetryObserver, redact_url_for_span
from kneo_client.testing import Emulator, Fault, async_memory_driver, memory_driver
from kneo_drivers.memory import SimulatedFailure
from kneo_proto import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    CallInfo,
    CallStarted,
    Event,
    FailureKind,
    KneoClientClosedError,
    KneoError,
    KneoServerError,
    Request,
    Response,
    ResponseReceived,
    RetryScheduled,
)


@dataclass
class Otel:
    observer: OpenTelemetryObserver
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def durations(self) -> list[HistogramDataPoint]:
        return durations(self.metrics)


def durations(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    """The points of ``http.client.request.duration``, the only metric kneo-client makes."""
    data = reader.get_metrics_data()
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert (metric.name, metric.unit) == ("http.client.request.duration", "s")
                points += [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]
    return points


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    observer = OpenTelemetryObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Otel(observer, spans, reader, tracer_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def call_info(
    url: str = "https://kneo.example:8443/v1/runs/run-7f3a", operation: str = "runs.get"
) -> CallInfo:
    return CallInfo(
        operation=operation,
        method="GET",
        route="/v1/runs/{run_id}",
        url=url,
        server_address="kneo.example",
        server_port=8443,
        request_id="req-1",
        idempotency_key=None,
        max_attempts=3,
    )


def script(info: CallInfo, *steps: int | FailureKind) -> list[Event]:
    """The events of one call whose attempts end as ``steps`` (a status or a failure, each
    0.2 s long); it finishes when the last step is below 400, and fails otherwise.
    """
    events: list[Event] = [CallStarted(call=info, at=0.0)]
    for n, step in enumerate(steps, start=1):
        events.append(AttemptStarted(call=info, at=n, attempt=n, timeout=10.0))
        events.append(
            AttemptFailed(call=info, at=n, attempt=n, failure=step, phase=None, duration=0.2)
            if isinstance(step, FailureKind)
            else ResponseReceived(call=info, at=n, attempt=n, status=step, duration=0.2)
        )
        if n < len(steps):
            events.append(
                RetryScheduled(call=info, at=n, attempt=n + 1, delay=0.5, cause=step, budget_left=0)
            )
    last, tries = steps[-1], len(steps)
    if isinstance(last, int) and last < 400:
        done: Event = CallFinished(
            call=info, at=9.0, status=last, attempts=tries, elapsed=9.0, request_id="req-1"
        )
    else:
        error = KneoServerError("boom", status=503)
        done = CallFailed(call=info, at=9.0, error=error, attempts=tries, elapsed=9.0)
    return [*events, done]


def feed(observer: OpenTelemetryObserver, events: list[Event]) -> None:
    for event in events:
        observer(event)


def test_otel_call_span_parents_one_client_span_per_attempt(otel: Otel) -> None:
    feed(otel.observer, script(call_info(), 503, FailureKind.CONNECT, 200))
    *attempts, call = otel.finished()
    assert call.name == "runs.get"
    assert call.kind is SpanKind.INTERNAL
    assert call.status.status_code is StatusCode.UNSET
    assert [a.name for a in attempts] == ["GET /v1/runs/{run_id}"] * 3
    for attempt in attempts:
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.parent is not None
        assert attempt.parent.span_id == call.context.span_id
        assert attempt.context.trace_id == call.context.trace_id
    assert call.parent is None


def test_otel_attempt_attributes_follow_http_client_semconv(otel: Otel) -> None:
    feed(otel.observer, script(call_info(), 503, FailureKind.CONNECT, 200))
    first, second, third, _ = otel.finished()
    shared = {
        "http.request.method": "GET",
        "server.address": "kneo.example",
        "server.port": 8443,
        "url.full": "https://kneo.example:8443/v1/runs/run-7f3a",
        "url.template": "/v1/runs/{run_id}",
    }
    assert dict(first.attributes or {}) == {
        **shared,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert dict(second.attributes or {}) == {
        **shared,
        "http.request.resend_count": 1,
        "error.type": "connect",
    }
    assert dict(third.attributes or {}) == {
        **shared,
        "http.request.resend_count": 2,
        "http.response.status_code": 200,
    }
    assert [s.status.status_code for s in (first, second, third)] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]


def test_otel_failed_call_span_has_error_status_and_class_name(otel: Otel) -> None:
    feed(otel.observer, script(call_info(), 503, 503))
    call = otel.finished()[-1]
    assert call.status.status_code is StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "KneoServerError"


def test_otel_call_span_is_child_of_the_callers_current_span(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handler") as handler:
        otel.observer(CallStarted(call=(info := call_info()), at=0.0))
    feed(otel.observer, script(info, 200)[1:])
    call = next(s for s in otel.finished() if s.name == "runs.get")
    assert call.parent is not None
    assert call.parent.span_id == handler.get_span_context().span_id


def test_otel_headers_for_carry_the_attempt_spans_traceparent(otel: Otel) -> None:
    info = call_info()
    otel.observer(CallStarted(call=info, at=0.0))
    started = AttemptStarted(call=info, at=0.0, attempt=1, timeout=10.0)
    otel.observer(started)
    headers = dict(otel.observer.headers_for(started))
    feed(otel.observer, script(info, 200)[2:])
    attempt = otel.finished()[0]
    context = attempt.context
    flags = f"{context.trace_flags:02x}"
    assert headers == {"traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"}


def test_otel_headers_before_the_attempt_event_start_the_same_span(otel: Otel) -> None:
    info = call_info()
    otel.observer(CallStarted(call=info, at=0.0))
    started = AttemptStarted(call=info, at=0.0, attempt=1, timeout=10.0)
    headers = dict(otel.observer.headers_for(started))
    feed(otel.observer, script(info, 200)[1:])
    attempts = [s for s in otel.finished() if s.kind is SpanKind.CLIENT]
    assert len(attempts) == 1
    assert f"{attempts[0].context.span_id:016x}" in headers["traceparent"]


def test_otel_duration_recorded_once_per_attempt_with_semconv_attributes(otel: Otel) -> None:
    feed(otel.observer, script(call_info(), 503, FailureKind.TIMEOUT, 200))
    points = otel.durations()
    by_outcome = {
        (p.attributes or {}).get(
            "error.type", (p.attributes or {}).get("http.response.status_code")
        ): p
        for p in points
    }
    assert set(by_outcome) == {"503", "timeout", 200}
    for point in points:
        assert point.count == 1
        assert point.sum == pytest.approx(0.2)
        assert tuple(point.explicit_bounds) == DURATION_BUCKETS
        attributes = dict(point.attributes or {})
        assert attributes["http.request.method"] == "GET"
        assert attributes["server.address"] == "kneo.example"
        assert attributes["server.port"] == 8443
    assert "http.response.status_code" not in dict(by_outcome["timeout"].attributes or {})


def test_otel_forgets_every_call_at_its_end(otel: Otel) -> None:
    for n in range(1000):
        steps: tuple[int | FailureKind, ...] = (503, 200) if n % 2 else (FailureKind.NETWORK,)
        feed(
            otel.observer, script(call_info(url=f"https://kneo.example:8443/v1/runs/r{n}"), *steps)
        )
    assert otel.observer._calls == {}
    assert len(otel.finished()) == 500 * 3 + 500 * 2


def test_otel_calls_from_many_threads_keep_their_own_spans(otel: Otel) -> None:
    def work(thread: int) -> None:
        for n in range(50):
            info = call_info(url=f"https://kneo.example:8443/v1/runs/t{thread}-{n}")
            feed(otel.observer, script(info, 429, 200))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = otel.finished()
    calls = {s.context.span_id: s for s in spans if s.kind is SpanKind.INTERNAL}
    attempts = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert (len(calls), len(attempts)) == (400, 800)
    for attempt in attempts:
        assert attempt.parent is not None
        parent = calls[attempt.parent.span_id]
        assert attempt.context.trace_id == parent.context.trace_id
    assert otel.observer._calls == {}


def test_otel_without_a_tracer_sdk_sends_no_header_but_still_measures() -> None:
    reader = InMemoryMetricReader()
    observer = OpenTelemetryObserver(
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    for event in script(call_info(), 503, 200):
        observer(event)
        if isinstance(event, AttemptStarted):
            assert dict(observer.headers_for(event)) == {}
    assert observer._calls == {}
    assert sum(point.count for point in durations(reader)) == 2


def test_otel_call_given_up_mid_attempt_ends_the_attempt_span(otel: Otel) -> None:
    """A cancelled call (or a client closed under it) reports CallFailed with no end of
    its attempt: the attempt span still ends, with the error, and is measured.
    """
    info = call_info()
    otel.observer(CallStarted(call=info, at=0.0))
    otel.observer(AttemptStarted(call=info, at=1.0, attempt=1, timeout=10.0))
    error = KneoClientClosedError("closed")
    otel.observer(CallFailed(call=info, at=1.5, error=error, attempts=1, elapsed=1.5))
    attempt, call = otel.finished()
    assert dict(attempt.attributes or {})["error.type"] == "KneoClientClosedError"
    assert attempt.status.status_code is StatusCode.ERROR
    assert call.status.status_code is StatusCode.ERROR
    (point,) = otel.durations()
    assert (point.count, point.sum) == (1, 0.5)
    assert otel.observer._calls == {}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/v1/runs?limit=5", "https://h/v1/runs?limit=5"),
        ("https://alice:pw@h:1/v1/x", "https://REDACTED:REDACTED@h:1/v1/x"),
        ("https://tok@h/v1/x", "https://REDACTED:REDACTED@h/v1/x"),
        (
            "https://h/x?access_token=a&limit=5&API_KEY=b&sig=c&X-Goog-Signature=d",
            "https://h/x?access_token=REDACTED&limit=5&API_KEY=REDACTED&sig=REDACTED"
            "&X-Goog-Signature=REDACTED",
        ),
        (
            "https://h/x?client_secret=s&password=p&q=a%20b",
            "https://h/x?client_secret=REDACTED&password=REDACTED&q=a%20b",
        ),
        ("https://h/x?token&design=1", "https://h/x?token&design=1"),
    ],
)
def test_otel_url_full_hides_credentials_and_secret_query_values(url: str, shown: str) -> None:
    assert redact_url_for_span(url) == shown


def test_otel_attempt_span_shows_the_redacted_url(otel: Otel) -> None:
    feed(otel.observer, script(call_info(url="https://u:p@kneo.example/v1/runs?token=t"), 200))
    attempt = otel.finished()[0]
    assert dict(attempt.attributes or {})["url.full"] == (
        "https://REDACTED:REDACTED@kneo.example/v1/runs?token=REDACTED"
    )


_NO_OPENTELEMETRY = """
import sys
import kneo_client
from kneo_client import KneoClient, Profile, SyncKneoClient
profile = Profile(name="t", url="https://kneo.example", api_key="k")
KneoClient(profile, tracing=False)
SyncKneoClient(profile, tracing=False)
loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
assert not loaded, loaded
"""


def test_otel_not_imported_by_kneo_client_nor_by_a_client_without_tracing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _NO_OPENTELEMETRY], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_otel_raw_request_span_is_named_after_the_method_alone(otel: Otel) -> None:
    info = msgspec.structs.replace(call_info(), operation="request", route="/v1/runs/run-7f3a")
    feed(otel.observer, script(info, 200))
    attempt, call = otel.finished()
    assert (attempt.name, call.name) == ("GET", "request")
    assert "url.template" not in dict(attempt.attributes or {})


# -- the emulator: many calls with faults, through both clients ---------------------------

FLAVOURS = ["blocking", "asyncio", "trio"]
CALLS = 1000
# Per call number modulo 10: the emulator's faults, and connection failures before them.
FAULTS: dict[int, tuple[tuple[Fault, ...], int]] = {
    1: ((Fault.error(503),), 0),
    3: ((Fault.rate_limited(retry_after=2),), 0),
    5: ((), 2),
    7: ((Fault.reset_before_response(), Fault.error(503)), 0),
    9: ((Fault.error(503),) * 3, 0),  # all three attempts fail: the call fails
}


class Wire:
    """A memory driver's handler, wrapped: keeps every request, refuses some connections."""

    def __init__(self, inner: Callable[[Request], Response | Awaitable[Response]]) -> None:
        self.inner = inner
        self.refusals = 0
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        self.requests.append(request)
        if self.refusals:
            self.refusals -= 1
            raise SimulatedFailure(FailureKind.CONNECT, "connection refused")
        return self.inner(request)


@dataclass
class World:
    emulator: Emulator
    wire: Wire
    client: KneoClient | SyncKneoClient
    events: list[Event]
    run_ids: list[str]


def world(flavour: str, otel: Otel) -> World:
    emulator = Emulator()
    driver = memory_driver(emulator) if flavour == "blocking" else async_memory_driver(emulator)
    driver.handler = wire = Wire(driver.handler)
    events: list[Event] = []
    options: dict[str, Any] = {
        "driver": driver,
        "observers": [otel.observer, events.append],
        "tracing": False,  # the observer above only, not the automatic one as well
        "retry_budget": None,
        "retry_policy": RetryPolicy(max_attempts=3),
    }
    profile = Profile(name="otel", url="https://emulator.test", api_key=emulator.api_key)
    client = SyncKneoClient if flavour == "blocking" else KneoClient
    return World(emulator, wire, client(profile, **options), events, [])


async def invoke(client: KneoClient | SyncKneoClient, name: str, *args: Any) -> Any:
    method = attrgetter(name)(client)
    if isinstance(client, SyncKneoClient):
        return await anyio.to_thread.run_sync(partial(method, *args))
    return await method(*args)


async def one_call(w: World, n: int) -> bool:
    """Call number ``n`` (create, readyz, get, list in turn) with its faults; True if it
    succeeded.
    """
    run_id = w.run_ids[-1] if w.run_ids else ""
    name, method, path, args = [
        ("platform.runs.create", "POST", "/v1/runs", ({"spec_id": "my-spec"},)),
        ("platform.health.readyz", "GET", "/v1/readyz", ()),
        ("platform.runs.get", "GET", f"/v1/runs/{run_id}", (run_id,)),
        ("platform.runs.list", "GET", "/v1/runs", ()),
    ][n % 4]
    faults, w.wire.refusals = FAULTS.get(n % 10, ((), 0))
    if faults:
        w.emulator.faults.script(method, path, *faults)
    try:
        result = await invoke(w.client, name, *args)
    except KneoError:
        return False
    if n % 4 == 0:
        w.run_ids.append(result.run_id)
    return True


async def calls(w: World) -> int:
    succeeded = 0
    for n in range(CALLS):
        succeeded += await one_call(w, n)
    if isinstance(w.client, SyncKneoClient):
        w.client.close()
    else:
        await w.client.aclose()
    return succeeded


def traceparent(request: Request) -> tuple[int, int]:
    _, trace_id, span_id, _ = (request.header("traceparent") or "").split("-")
    return int(trace_id, 16), int(span_id, 16)


def check_attempt_spans(w: World, spans: tuple[ReadableSpan, ...]) -> None:
    """One CLIENT span per request sent, whose ID the request carried, child of its call."""
    calls = {s.context.span_id: s for s in spans if s.kind is SpanKind.INTERNAL}
    attempts = {
        (s.context.trace_id, s.context.span_id): s for s in spans if s.kind is SpanKind.CLIENT
    }
    assert len(attempts) == len(w.wire.requests)
    assert {traceparent(r) for r in w.wire.requests} == set(attempts)
    for request in w.wire.requests:
        span = attempts[traceparent(request)]
        attributes = dict(span.attributes or {})
        assert set(attributes) >= REQUIRED, span.name
        assert ("http.response.status_code" in attributes) != (
            attributes.get("error.type") in {"connect", "network"}
        )
        assert (span.status.status_code is StatusCode.ERROR) == ("error.type" in attributes)
        resends = int(request.header("X-Kneo-Attempt") or 0) - 1
        assert attributes.get("http.request.resend_count", 0) == resends
        assert span.parent is not None
        assert calls[span.parent.span_id].context.trace_id == span.context.trace_id


REQUIRED = {"http.request.method", "server.address", "server.port", "url.full", "url.template"}
NAMES = {"POST /v1/runs", "GET /v1/readyz", "GET /v1/runs/{run_id}", "GET /v1/runs"}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_otel_one_client_span_per_attempt_over_many_calls_with_faults(
    flavour: str, otel: Otel, figure: Callable[[str, str], None]
) -> None:
    w = world(flavour, otel)
    started = time.perf_counter()
    succeeded = anyio.run(calls, w, backend="trio" if flavour == "trio" else "asyncio")
    elapsed = time.perf_counter() - started
    spans = otel.finished()
    attempts = [e for e in w.events if isinstance(e, AttemptStarted)]
    retries = sum(e.attempt > 1 for e in attempts)
    assert (succeeded, len(attempts), retries) == (900, 1800, 800)
    assert w.emulator.faults.pending() == 0
    assert len(w.wire.requests) == len(attempts)
    check_attempt_spans(w, spans)
    assert {s.name for s in spans if s.kind is SpanKind.CLIENT} == NAMES
    assert not any(run_id in s.name for s in spans for run_id in w.run_ids)
    failed = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert sum(s.kind is SpanKind.INTERNAL for s in failed) == CALLS - succeeded
    assert sum(point.count for point in otel.durations()) == len(attempts)
    assert otel.observer._calls == {}
    figure(
        f"otel-{flavour}",
        f"{CALLS} calls, {len(attempts)} attempts, {len(spans)} spans "
        f"({retries} retries) in {elapsed:.2f} s",
    )


_GLOBAL_PROVIDER = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, memory_driver

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
emulator = Emulator()
profile = Profile(name="t", url="https://emulator.test", api_key=emulator.api_key)
sent = []
for tracing in (None, False):
    driver = memory_driver(emulator)
    handler = driver.handler
    driver.handler = lambda request: sent.append(request.header("traceparent")) or handler(request)
    with SyncKneoClient(profile, driver=driver, tracing=tracing) as client:
        client.platform.health.livez()
(attempt, call) = spans.get_finished_spans()
assert (attempt.name, attempt.parent.span_id) == ("GET /v1/livez", call.context.span_id)
ids = attempt.context
assert sent[0] == f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}", sent
assert sent[1] is None, sent
"""


def test_otel_observer_added_by_default_and_not_with_tracing_false() -> None:
    """A client with tracing on (the default) traces with the global provider; one built
    with ``tracing=False`` neither makes a span nor sends ``traceparent``.
    """
    done = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDER], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
