"""OpenTelemetry spans and metrics for kneo-client calls (the ``kneo-client[otel]`` extra).

A client adds an ``OpenTelemetryObserver`` by itself when ``opentelemetry-api`` is installed
and tracing is on (``tracing=False`` or ``KNEO_TRACING=0`` turns it off); pass one in
``observers=[...]`` to choose the tracer and meter providers. Following the OpenTelemetry
HTTP client semantic conventions, each logical call gives:

* an INTERNAL span named after the operation (``CallInfo.operation``), child of the span
  current where the call was made, ended when the call finishes (status ERROR and
  ``error.type``, the exception's class name, when it fails);
* one CLIENT span per HTTP attempt, child of the call span, named ``{method} {route
  template}`` (``GET /v1/runs/{run_id}``: never a concrete ID; the method alone for a raw
  ``request(...)``, whose path is concrete), whose context goes to the platform in
  ``traceparent`` (and ``tracestate``);
* one ``http.client.request.duration`` measurement per attempt.

Invariants: state lives per call, keyed by ``id(event.call)``, and goes when the call ends;
``url.full`` never shows user info or the value of a secret-looking query parameter; while
no SDK records a span, no attribute is built for it. Events of one call arrive in order from
one task or thread; different calls may report from many threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from opentelemetry import context as otel_context, metrics, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kneo_proto import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    CallInfo,
    CallStarted,
    Event,
    ResponseReceived,
    __version__,
)

__all__ = ["DURATION_BUCKETS", "OpenTelemetryObserver", "redact_url_for_span"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""The explicit bucket boundaries semconv advises for ``http.client.request.duration`` (s)."""

_SCOPE = "kneo_client"
_KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
_SECRET_QUERY_TOKENS = ("token", "key", "secret", "signature", "password", "passwd", "credential")
_SECRET_QUERY_NAMES = frozenset(("sig", "auth"))
_RAW_OPERATIONS = frozenset(("request", "raw"))
_REDACTED = "REDACTED"  # the word semconv uses for url.full


class _Call:
    """One call's spans, and the attributes its attempts share."""

    __slots__ = (
        "attempt",
        "attempt_at",
        "attempt_no",
        "base",
        "context",
        "info",
        "name",
        "open",
        "span",
        "templated",
        "traced",
    )

    def __init__(self, info: CallInfo, span: Span, context: otel_context.Context) -> None:
        self.info = info  # held, so id(info) cannot be reused while this call is tracked
        self.span = span
        self.context = context
        # No SDK and no trace to continue: no attempt span, no header, only the metric.
        self.traced = span.is_recording() or span.get_span_context().is_valid
        self.open = False  # an attempt started and has not ended
        self.attempt: Span | None = None
        self.attempt_no = 0
        self.attempt_at = 0.0
        self.base = _metric_base(info)
        # A raw ``client.request(...)`` has its concrete path as route: semconv then names
        # the span after the method alone.
        self.templated = info.operation not in _RAW_OPERATIONS
        method = str(self.base["http.request.method"]).replace("_OTHER", "HTTP")
        self.name = f"{method} {info.route}" if self.templated else method


class OpenTelemetryObserver:
    """An observer that turns a client's call events into OpenTelemetry spans and metrics.

    Safe to share between clients and threads. An observer never breaks a call: the client
    reports an exception raised here once and carries on.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        """Trace with ``tracer_provider`` and measure with ``meter_provider``.

        Args:
            tracer_provider: Where spans go; None: the global one (set with
                ``opentelemetry.trace.set_tracer_provider``, looked up at each span).
            meter_provider: Where the duration histogram goes; None: the global one.
        """
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._calls: dict[int, _Call] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        """Start or end the span ``event`` marks, and measure a finished attempt."""
        match event:
            case CallStarted():
                self._start_call(event.call)
            case AttemptStarted():
                self._attempt(self._state(event.call), event.attempt, event.at)
            case ResponseReceived():
                error = str(event.status) if event.status >= 400 else None
                self._end_attempt(event, event.status, error)
            case AttemptFailed():
                self._end_attempt(event, None, event.failure.value)
            case CallFinished():
                self._end_call(event, None)
            case CallFailed():
                self._end_call(event, type(event.error).__name__)

    def headers_for(self, event: AttemptStarted) -> Iterable[tuple[str, str]]:
        """The trace context of the attempt ``event`` announces, as request headers.

        Returns:
            What the global propagator writes (W3C ``traceparent`` and ``tracestate`` by
            default, and ``baggage`` when the caller's context holds some); nothing when
            there is no trace.
        """
        state = self._state(event.call)
        span = self._attempt(state, event.attempt, event.at)
        if span is None:
            return ()
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span, state.context))
        return carrier.items()

    def _state(self, info: CallInfo) -> _Call:
        """The call's state, started here when its ``CallStarted`` was not seen."""
        with self._lock:
            state = self._calls.get(id(info))
        return state if state is not None and state.info is info else self._start_call(info)

    def _start_call(self, info: CallInfo) -> _Call:
        parent = otel_context.get_current()
        span = self._tracer.start_span(info.operation, context=parent, kind=SpanKind.INTERNAL)
        state = _Call(info, span, trace.set_span_in_context(span, parent))
        with self._lock:
            self._calls[id(info)] = state
        return state

    def _attempt(self, state: _Call, attempt: int, at: float) -> Span | None:
        """The span of ``attempt``, started by whichever of the event and the header request
        comes first (None when the call is not traced).
        """
        if not state.open or state.attempt_no != attempt:
            if state.attempt is not None:  # a previous attempt that never reported its end
                state.attempt.end()
            state.open, state.attempt_no, state.attempt_at = True, attempt, at
            state.attempt = self._start_attempt(state, attempt) if state.traced else None
        return state.attempt

    def _start_attempt(self, state: _Call, attempt: int) -> Span:
        span = self._tracer.start_span(state.name, context=state.context, kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(state.base)
            span.set_attribute("url.full", redact_url_for_span(state.info.url))
            if state.templated:
                span.set_attribute("url.template", state.info.route)
            if attempt > 1:
                span.set_attribute("http.request.resend_count", attempt - 1)
        return span

    def _end_attempt(
        self, event: ResponseReceived | AttemptFailed, status: int | None, error: str | None
    ) -> None:
        state = self._state(event.call)
        self._attempt(state, event.attempt, event.at - event.duration)
        self._close_attempt(state, event.duration, status, error)

    def _close_attempt(
        self, state: _Call, duration: float, status: int | None, error: str | None
    ) -> None:
        attributes = dict(state.base)
        if status is not None:
            attributes["http.response.status_code"] = status
        if error is not None:
            attributes["error.type"] = error
        span = state.attempt
        if span is not None:
            if span.is_recording():
                span.set_attributes(attributes)
                if error is not None:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
        state.attempt, state.open = None, False
        self._duration.record(duration, attributes)

    def _end_call(self, event: CallFinished | CallFailed, error: str | None) -> None:
        with self._lock:
            state = self._calls.pop(id(event.call), None)
        if state is None or state.info is not event.call:
            return
        if state.open:  # given up mid-attempt: cancelled, or the client closed under it
            self._close_attempt(state, event.at - state.attempt_at, None, error or "cancelled")
        if error is not None and state.span.is_recording():
            state.span.set_attribute("error.type", error)
            state.span.set_status(Status(StatusCode.ERROR))
        state.span.end()


def _metric_base(info: CallInfo) -> dict[str, str | int]:
    method = info.method.upper()
    base: dict[str, str | int] = {
        "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
        "server.address": info.server_address,
        "server.port": info.server_port,
    }
    return base


def redact_url_for_span(url: str) -> str:
    """``url`` as ``url.full`` may show it: user info and secret-looking query values replaced.

    ``https://u:p@host/v1/x?page_token=abc&limit=5`` becomes
    ``https://REDACTED:REDACTED@host/v1/x?page_token=REDACTED&limit=5``: a query parameter is
    secret when its name contains ``token``, ``key``, ``secret``, ``signature``, ``password``,
    ``passwd`` or ``credential``, or is ``sig`` or ``auth`` (any case). Everything
    else is kept byte for byte.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}:{_REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    lowered = unquote_plus(name).lower()
    secret = lowered in _SECRET_QUERY_NAMES or any(t in lowered for t in _SECRET_QUERY_TOKENS)
    return f"{name}={_REDACTED}" if secret and equals else pair
