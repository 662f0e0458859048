"""A small, stateful fake of the Kneo Agent Platform /v1 API: one handler for every driver.

``FakePlatform`` is a ``Callable[[Request], Response]``: hand it to ``MemoryDriver`` /
``AsyncMemoryDriver`` or serve it with ``tests.loopback.serve``. Bodies follow
``spec/kneo-v1.openapi.yaml`` (every required field present), so every answer decodes.

What it models:
- runs go ``queued`` (on create) -> ``running`` -> a terminal status on the
  ``polls_to_complete``-th ``GET /v1/runs/{id}`` (never, when None); ``outcomes`` maps a
  ``spec_id`` to a final status other than ``completed`` (``paused_human_review`` included);
- list pages of runs, a run's trace and audit events, with correct count/total/limit/offset;
- the idempotency store: a POST repeating a key with the same payload is replayed (with
  ``Idempotent-Replayed: true``), with another payload rejected (409 ``idempotency_key_mismatch``);
- 404 ``not_found`` (and 401 without the API key) in the spec's error shape
  ``{"error": {"code": ..., "message": ...}}``;
- scripted faults per path, consumed in order ("two 503s then normal", "429 with
  Retry-After: 1", a slow answer, a lost response, a dropped connection);
- counters: requests per path, executions per idempotency key, and a log of every request.

``X-Request-ID`` is echoed on every response (or assigned when absent). Delays use ``sleep``:
an interruptible real wait by default (``stop()`` wakes it), or a virtual clock's ``advance``.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from kneo_drivers.memory import SimulatedFailure
from kneo_proto import FailureKind, Request, Response

__all__ = [
    "API_KEY",
    "ERROR_CODES",
    "FakePlatform",
    "Fault",
    "disconnect",
    "error_body",
    "lost_response",
    "rate_limited",
    "raw",
    "slow",
    "status",
]

API_KEY = "kneo-test-key-0123456789"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
TERMINAL = frozenset({"completed", "failed", "cancelled"})
ERROR_CODES: Mapping[int, str] = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}
AUDIT_TYPES = ("run.created", "run.cancelled", "policy.updated", "credential.rotated")
HEALTH_PATHS = frozenset({"/v1/healthz", "/v1/livez", "/v1/readyz"})
HEALTH = {
    "ok": True,
    "service": "kneo-serv-platform",
    "version": "0.4.0",
    "metadata": {"checks": {"database": {"ok": True}, "queue": {"ok": True}}},
}


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, used up by one request to its path.

    Attributes:
        status: The status to answer with; None answers normally (after ``delay``).
        code: The error code of the body; by default the usual one for ``status``.
        headers: Extra response headers (e.g. ``Retry-After``).
        body: A raw body to send instead of the spec's error body.
        delay: Seconds to wait before answering.
        disconnect: Drop the connection without answering.
        after: Execute the request first, then answer with the fault (a lost response).
    """

    status: int | None = 503
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    delay: float = 0.0
    disconnect: bool = False
    after: bool = False


def status(code: int, error_code: str | None = None, **headers: str) -> Fault:
    """Answer ``code`` with the spec's error body."""
    return Fault(status=code, code=error_code, headers=tuple(headers.items()))


def rate_limited(retry_after: str = "1") -> Fault:
    """Answer 429 with ``Retry-After``."""
    return Fault(status=429, headers=(("Retry-After", retry_after),))


def slow(seconds: float) -> Fault:
    """Answer normally, ``seconds`` late."""
    return Fault(status=None, delay=seconds)


def raw(code: int, body: bytes) -> Fault:
    """Answer ``code`` with exactly ``body``."""
    return Fault(status=code, body=body)


def disconnect() -> Fault:
    """Drop the connection without answering."""
    return Fault(disconnect=True)


def lost_response(code: int = 503) -> Fault:
    """Execute the request, then answer ``code`` as if the real answer had been lost."""
    return Fault(status=code, after=True)


def error_body(code: str, message: str, request_id: str | None = None) -> bytes:
    """The spec's ``ErrorResponse`` body."""
    detail: dict[str, str] = {"code": code, "message": message}
    if request_id is not None:
        detail["request_id"] = request_id
    return msgspec.json.encode({"error": detail})


def _timestamp(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat()


@dataclass
class _Run:
    run_id: str
    spec_id: str
    created: int
    final_status: str
    status: str = "queued"
    polls: int = 0

    def as_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "spec_id": self.spec_id,
            "status": self.status,
            "environment": "dev",
            "created_at": _timestamp(self.created),
            "updated_at": _timestamp(self.created + self.polls),
        }
        if self.status != "queued":
            body["started_at"] = _timestamp(self.created + 1)
        if self.status in TERMINAL:
            body["completed_at"] = _timestamp(self.created + self.polls)
        if self.status == "completed":
            body["outputs"] = {"answer": 42}
        if self.status == "paused_human_review":
            body["continuation_id"] = f"cont-{self.run_id}"
        return body


@dataclass
class _Exchange:
    """What one request turned into, before the fault (if any) is applied."""

    status: int
    payload: Any
    headers: list[tuple[str, str]] = field(default_factory=list)


Route = Callable[["FakePlatform", Request, re.Match[str], dict[str, list[str]]], _Exchange]


class FakePlatform:
    """The fake platform; call it with a ``Request`` to get a ``Response``.

    Args:
        api_key: The key every non-health request must carry (None: no check).
        polls_to_complete: The poll of a run that finds it terminal (None: never).
        runs: Runs to seed (``run-0001`` ...), each already terminal.
        audit_events: Audit events to seed.
        trace_events: Events in each run's trace.
        outcomes: ``spec_id`` -> the final status of its runs (default ``completed``).
        sleep: How to wait for a scripted delay.
    """

    def __init__(
        self,
        *,
        api_key: str | None = API_KEY,
        polls_to_complete: int | None = 2,
        runs: int = 0,
        audit_events: int = 0,
        trace_events: int = 3,
        outcomes: Mapping[str, str] | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.trace_events = trace_events
        self.outcomes = dict(outcomes or {})
        self.requests: Counter[str] = Counter()
        self.executions: Counter[str] = Counter()
        self.log: list[Request] = []
        self._stop = threading.Event()
        self.sleep: Callable[[float], object] = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._faults: dict[str, list[tuple[str | None, Fault]]] = {}
        self._static: dict[tuple[str, str], Any] = {}
        self._runs: dict[str, _Run] = {}
        self._audit: list[dict[str, Any]] = []
        self._store: dict[str, tuple[tuple[str, bytes], _Exchange]] = {}
        self._ids = 0
        for _ in range(runs):
            self._new_run("seeded-spec").status = "completed"
        for _ in range(audit_events):
            self._add_audit(AUDIT_TYPES[len(self._audit) % len(AUDIT_TYPES)], None)

    # -- what tests call -------------------------------------------------------------------

    def script(self, path: str, *faults: Fault, method: str | None = None) -> None:
        """Queue ``faults`` for the next requests to ``path`` (of ``method``, if given)."""
        with self._lock:
            self._faults.setdefault(path, []).extend((method, f) for f in faults)

    def answer(self, method: str, path: str, payload: Any) -> None:
        """Answer ``method path`` with 200 and ``payload`` (a route the fake does not know)."""
        with self._lock:
            self._static[(method, path)] = payload

    def requests_to(self, path: str) -> list[Request]:
        """Every request received for ``path``, in order."""
        with self._lock:
            return [r for r in self.log if urlsplit(r.url).path == path]

    def stop(self) -> None:
        """Wake every scripted delay at once (for a bounded shutdown)."""
        self._stop.set()

    def run_ids(self) -> list[str]:
        """The IDs of every run, in creation order."""
        with self._lock:
            return list(self._runs)

    def __call__(self, request: Request) -> Response:
        url = urlsplit(request.url)
        with self._lock:
            self.log.append(request)
            self.requests[url.path] += 1
            fault = self._next_fault(url.path, request.method)
        request_id = request.header("x-request-id") or f"srv-{len(self.log)}"
        if fault is not None and fault.delay:
            self.sleep(fault.delay)
        if fault is not None and fault.disconnect:
            raise SimulatedFailure(FailureKind.NETWORK, "the fake dropped the connection")
        if fault is not None and fault.status is not None:
            if fault.after:
                with self._lock:
                    self._dispatch(request, url.path, parse_qs(url.query))
            exchange = self._fault_exchange(fault, request_id)
        else:
            with self._lock:
                exchange = self._dispatch(request, url.path, parse_qs(url.query))
        return self._respond(exchange, request_id)

    # -- plumbing --------------------------------------------------------------------------

    def _next_fault(self, path: str, method: str) -> Fault | None:
        queue = self._faults.get(path, [])
        for index, (wanted, fault) in enumerate(queue):
            if wanted is None or wanted == method:
                del queue[index]
                return fault
        return None

    def _fault_exchange(self, fault: Fault, request_id: str) -> _Exchange:
        assert fault.status is not None
        if fault.body is not None:
            return _Exchange(fault.status, fault.body, list(fault.headers))
        code = fault.code or ERROR_CODES.get(fault.status, "internal_error")
        payload = {"error": {"code": code, "message": "scripted fault", "request_id": request_id}}
        return _Exchange(fault.status, payload, list(fault.headers))

    def _respond(self, exchange: _Exchange, request_id: str) -> Response:
        payload = exchange.payload
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            payload["error"].setdefault("request_id", request_id)
        body = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        headers = [
            ("Content-Type", "application/json"),
            ("X-Request-ID", request_id),
            *exchange.headers,
        ]
        return Response(exchange.status, tuple(headers), body)

    def _dispatch(self, request: Request, path: str, query: dict[str, list[str]]) -> _Exchange:
        if path not in HEALTH_PATHS and not self._authorized(request):
            return _error(401, "unauthorized", "missing or invalid API key")
        static = self._static.get((request.method, path))
        if static is not None:
            return _Exchange(200, static)
        for method, pattern, route in ROUTES:
            match = pattern.fullmatch(path)
            if match is not None and method == request.method:
                if method == "POST":
                    return self._idempotent(request, path, route, match, query)
                return route(self, request, match, query)
        return _error(404, "not_found", f"no route for {request.method} {path}")

    def _authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        return request.header("authorization") == f"Bearer {self.api_key}" or (
            request.header("x-kneo-api-key") == self.api_key
        )

    def _idempotent(
        self,
        request: Request,
        path: str,
        route: Route,
        match: re.Match[str],
        query: dict[str, list[str]],
    ) -> _Exchange:
        key = request.header("idempotency-key")
        if key is None:
            return route(self, request, match, query)
        fingerprint = (path, request.body)
        stored = self._store.get(key)
        if stored is not None:
            if stored[0] != fingerprint:
                return _error(
                    409, "idempotency_key_mismatch", "key reused with a different payload"
                )
            original = stored[1]
            headers = [*original.headers, ("Idempotent-Replayed", "true")]
            return _Exchange(original.status, original.payload, headers)
        self.executions[key] += 1
        exchange = route(self, request, match, query)
        if 200 <= exchange.status < 300:
            self._store[key] = (fingerprint, exchange)
        return exchange

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _new_run(self, spec_id: str) -> _Run:
        number = self._next_id()
        run = _Run(f"run-{number:04d}", spec_id, number, self.outcomes.get(spec_id, "completed"))
        self._runs[run.run_id] = run
        return run

    def _add_audit(self, event_type: str, run_id: str | None) -> None:
        number = len(self._audit) + 1
        event: dict[str, Any] = {
            "event_id": f"evt-{number:04d}",
            "event_type": event_type,
            "timestamp": _timestamp(number),
            "principal": "user:alice" if number % 2 else "svc:ci",
        }
        if run_id is not None:
            event["run_id"] = run_id
        self._audit.append(event)

    def _run(self, run_id: str) -> _Run | _Exchange:
        found = self._runs.get(run_id)
        return found if found is not None else _error(404, "not_found", f"no run {run_id}")

    # -- routes ----------------------------------------------------------------------------

    def _health(self, request: Request, match: re.Match[str], q: dict[str, list[str]]) -> _Exchange:
        return _Exchange(200, HEALTH)

    def _create_run(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        body = msgspec.json.decode(request.body or b"{}")
        if not isinstance(body, dict) or not (body.get("spec_id") or body.get("spec")):
            return _error(422, "validation_error", "spec_id or spec is required")
        run = self._new_run(str(body.get("spec_id") or "inline"))
        self._add_audit("run.created", run.run_id)
        payload = {
            "run_id": run.run_id,
            "status": run.status,
            "created_at": _timestamp(run.created),
            "spec_id": run.spec_id,
        }
        return _Exchange(201, payload)

    def _list_runs(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        runs = [r.as_status() for r in self._runs.values()]
        if "status" in q:
            runs = [r for r in runs if r["status"] == q["status"][0]]
        return _page(runs, "runs", q, "updated_at", "desc")

    def _get_run(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        run = self._run(match["run_id"])
        if isinstance(run, _Exchange):
            return run
        if run.status not in TERMINAL and run.status != "paused_human_review":
            run.polls += 1
            done = self.polls_to_complete is not None and run.polls >= self.polls_to_complete
            run.status = run.final_status if done else "running"
        return _Exchange(200, run.as_status())

    def _cancel_run(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        run = self._run(match["run_id"])
        if isinstance(run, _Exchange):
            return run
        if run.status not in TERMINAL:
            run.status = "cancelled"
            self._add_audit("run.cancelled", run.run_id)
        return _Exchange(200, run.as_status())

    def _trace(self, request: Request, match: re.Match[str], q: dict[str, list[str]]) -> _Exchange:
        run = self._run(match["run_id"])
        if isinstance(run, _Exchange):
            return run
        kinds = [
            "run_started",
            *["step_completed"] * max(self.trace_events - 2, 0),
            "run_completed",
        ]
        events = [
            {
                "event_id": f"{run.run_id}-ev-{i}",
                "run_id": run.run_id,
                "sequence": i,
                "event_type": kind,
                "timestamp": _timestamp(run.created + i),
                "data": {"step": i},
            }
            for i, kind in enumerate(kinds[: self.trace_events])
        ]
        exchange = _page(events, "events", q, "timestamp", "asc")
        exchange.payload["run_id"] = run.run_id
        return exchange

    def _audit_events(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        events = list(self._audit)
        for name in ("event_type", "run_id", "principal"):
            if name in q:
                events = [e for e in events if e.get(name) == q[name][0]]
        return _page(events, "events", q, "timestamp", "desc")

    def _validate(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        spec = str(msgspec.json.decode(request.body).get("spec", ""))
        diagnostics = _diagnostics(spec)
        return _Exchange(200, {"valid": not diagnostics, "diagnostics": diagnostics})

    def _compile(
        self, request: Request, match: re.Match[str], q: dict[str, list[str]]
    ) -> _Exchange:
        spec = str(msgspec.json.decode(request.body).get("spec", ""))
        diagnostics = _diagnostics(spec)
        payload: dict[str, Any] = {"ok": not diagnostics, "diagnostics": diagnostics}
        if not diagnostics:
            payload["compiled"] = {"steps": [], "source_length": len(spec)}
            payload["spec_id"] = f"spec-{self._next_id():04d}"
        return _Exchange(200, payload)


def _error(code: int, error_code: str, message: str) -> _Exchange:
    return _Exchange(code, {"error": {"code": error_code, "message": message}})


def _diagnostics(spec: str) -> list[dict[str, Any]]:
    if "invalid" not in spec:
        return []
    return [{"severity": "error", "message": "the spec says it is invalid", "line": 1, "column": 1}]


def _page(
    items: list[dict[str, Any]],  # oldest first
    field_name: str,
    q: dict[str, list[str]],
    sort_by: str,
    sort_order: str,
) -> _Exchange:
    try:
        limit = int(q.get("limit", ["100"])[0])
        offset = int(q.get("offset", ["0"])[0])
    except ValueError:
        return _error(422, "validation_error", "limit and offset must be integers")
    if not 1 <= limit <= 1000 or offset < 0:
        return _error(422, "validation_error", "limit must be 1..1000 and offset >= 0")
    chosen_order = q.get("sort_order", [sort_order])[0]
    ordered = list(reversed(items)) if chosen_order == "desc" else items
    page = ordered[offset : offset + limit]
    payload = {
        field_name: page,
        "count": len(page),
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "sort_by": q.get("sort_by", [sort_by])[0],
        "sort_order": chosen_order,
    }
    return _Exchange(200, payload)


def _route(method: str, template: str, handler: Route) -> tuple[str, re.Pattern[str], Route]:
    return method, re.compile(template), handler


ROUTES: tuple[tuple[str, re.Pattern[str], Route], ...] = (
    _route("GET", r"/v1/(healthz|livez|readyz)", FakePlatform._health),
    _route("POST", r"/v1/runs", FakePlatform._create_run),
    _route("GET", r"/v1/runs", FakePlatform._list_runs),
    _route("GET", r"/v1/runs/(?P<run_id>[^/]+)", FakePlatform._get_run),
    _route("POST", r"/v1/runs/(?P<run_id>[^/]+)/cancel", FakePlatform._cancel_run),
    _route("GET", r"/v1/runs/(?P<run_id>[^/]+)/trace", FakePlatform._trace),
    _route("GET", r"/v1/audit-events", FakePlatform._audit_events),
    _route("POST", r"/v1/specs/validate", FakePlatform._validate),
    _route("POST", r"/v1/specs/compile", FakePlatform._compile),
)
