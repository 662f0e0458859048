"""The platform emulator (``kneo_client.testing``) as the driver and client tests use it.

``Emulated`` wraps an ``Emulator`` with what those tests look at besides the answers:

- ``log``: every request that reached the emulator, in order, as it arrived (over a socket:
  as the server parsed it; in memory: as it left the client); ``requests`` counts them per
  path and ``requests_to(path)`` lists them;
- ``rewrites``: functions applied to every reply, in order, through ``Emulator.rewrite`` (a
  gateway rewriting ``X-Request-ID``, a body without optional fields, ...);
- ``seed``: runs and audit events made before the test's own calls, and ``run_ids`` and
  ``lookup`` for the test's checks. None of them is logged or rewritten.

Time: a memory driver runs on the emulator's own clock, so the client's sleeps (polling,
backoff) move the platform's time. Over a socket nothing moves the virtual clock, so
``serve`` sets ``poll_tick``: after each ``GET /v1/runs/{id}`` the clock moves by
``POLL_INTERVAL``, the sleep a test's ``wait_for_completion`` takes between polls. With
``TIMING`` (no queueing, 4 ms a step) a ``my-spec`` run is ``running`` at its first poll
and ``completed`` at its second, in memory and over sockets alike. ``SLOW_SPEC`` names a
registered spec whose one step takes a day: its runs stay ``running``.

``serve`` serves on 127.0.0.1 from a background thread, with a short grace period, so that
a reply held back by ``Fault.latency`` does not hold up the shutdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from kneo_client.testing import (
    Emulator,
    Reply,
    Rewrite,
    RunningEmulator,
    RunTiming,
    serve_emulator,
)
from kneo_proto import Request, Response

__all__ = [
    "API_KEY",
    "MEMORY_URL",
    "POLL_INTERVAL",
    "SLOW_SPEC",
    "TIMING",
    "Emulated",
    "path_of",
    "replace_response",
    "run_id",
    "serve",
]

API_KEY = "kneo-test-key-0123456789"
MEMORY_URL = "http://127.0.0.1:9"  # never contacted: the memory drivers answer
TIMING = RunTiming(queued_seconds=0.0, step_seconds=0.004)
POLL_INTERVAL = 0.01
SLOW_SPEC = "slow-spec"
_SLOW_SPEC_TEXT = f"""\
name: {SLOW_SPEC}
steps:
  - name: wait
    kind: tool
    tool: http.get
    seconds: 86400
"""
_SEED_ENVIRONMENT = "seeded"
_BASE = "https://emulator.test"
GRACE_PERIOD = 0.2


def run_id(number: int) -> str:
    """The ID of the ``number``-th run an emulator creates (from 1)."""
    return f"run-{number:06d}"


def path_of(request: Request) -> str:
    """The path of ``request``'s target, without the query."""
    return request.target.partition("?")[0]


def replace_response(reply: Reply, response: Response) -> Reply:
    """``reply`` delivering ``response`` instead (its delay and delivery kept)."""
    return dataclasses.replace(reply, response=response)


def _is_poll(request: Request) -> bool:
    parts = path_of(request).strip("/").split("/")
    return request.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "runs"]


class Emulated:
    """An emulator, with a request log, reply rewrites and polls that move its clock.

    Args:
        api_key: The full-access key.
        timing: How long runs take.
        poll_tick: Seconds the clock moves after each poll of a run (0: it does not).
            In memory leave it 0: the driver's own sleeps move the clock, and a tick would
            count as the answer's latency.
        rewrites: Applied to every reply, in order (``rewrites`` can grow later).
    """

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        timing: RunTiming = TIMING,
        poll_tick: float = 0.0,
        rewrites: Iterable[Rewrite] = (),
    ) -> None:
        self.emulator = Emulator(api_key=api_key, run_timing=timing, rewrite=self._rewrite)
        self.poll_tick = poll_tick
        self.rewrites: list[Rewrite] = list(rewrites)
        self.log: list[Request] = []
        self._lookups: set[int] = set()
        self._lock = threading.Lock()
        self.lookup("POST", "/v1/specs/compile", {"spec": _SLOW_SPEC_TEXT})

    @property
    def api_key(self) -> str:
        return self.emulator.api_key

    def _rewrite(self, request: Request, reply: Reply) -> Reply:
        with self._lock:
            if id(request) in self._lookups:
                return reply
            self.log.append(request)
        if self.poll_tick and _is_poll(request):
            self.emulator.advance(self.poll_tick)
        for rewrite in self.rewrites:
            reply = rewrite(request, reply)
        return reply

    # -- what the tests check --------------------------------------------------------------

    @property
    def requests(self) -> Counter[str]:
        """Requests logged per path."""
        with self._lock:
            return Counter(path_of(r) for r in self.log)

    def requests_to(self, path: str) -> list[Request]:
        """Every logged request for ``path``, in order."""
        with self._lock:
            return [r for r in self.log if path_of(r) == path]

    @property
    def executions(self) -> Counter[str]:
        """Real executions per idempotency key."""
        return self.emulator.counters.executions

    def lookup(
        self, method: str, target: str, body: Any = None, *, key: str | None = None
    ) -> Response:
        """Answer ``method target`` with ``key`` (the operator's by default); neither logged
        nor rewritten. Anything but a 2xx answer fails the test."""
        data = b"" if body is None else msgspec.json.encode(body)
        headers = [("Authorization", f"Bearer {key or self.api_key}")]
        if method in ("POST", "PUT"):
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        request = Request(method, _BASE + target, tuple(headers), data)
        with self._lock:
            self._lookups.add(id(request))
        try:
            response = self.emulator.handle(request).response
        finally:
            with self._lock:
                self._lookups.discard(id(request))
        if not 200 <= response.status < 300:
            raise AssertionError(f"{method} {target}: {response.status} {response.body!r}")
        return response

    def run_ids(self) -> list[str]:
        """The ID of every run, oldest first."""
        listed = self.lookup("GET", "/v1/runs?limit=1000&sort_by=created_at&sort_order=asc")
        runs: list[dict[str, Any]] = msgspec.json.decode(listed.body)["runs"]
        return [run["run_id"] for run in runs]

    # -- before the test -------------------------------------------------------------------

    def seed(self, *, runs: int = 0, audit_events: int = 0, spec_id: str = "my-spec") -> None:
        """Make ``runs`` completed runs of ``spec_id`` (one second apart, so that their
        ``created_at`` and ``updated_at`` orders agree), then ``policy.updated`` events up to
        ``audit_events`` audit events in all."""
        assert audit_events == 0 or audit_events >= runs, "each run records one audit event"
        for _ in range(runs):
            self.lookup("POST", "/v1/runs", {"spec_id": spec_id})
            self.emulator.advance(1.0)
        for _ in range(audit_events - runs):
            self.lookup("PUT", f"/v1/policies/environment/{_SEED_ENVIRONMENT}", {})
        self.emulator.advance(3600.0)


@contextlib.contextmanager
def serve(emulated: Emulated) -> Iterator[RunningEmulator]:
    """Serve ``emulated`` on 127.0.0.1 from a background thread; each poll of a run moves
    its clock by ``POLL_INTERVAL``."""
    emulated.poll_tick = POLL_INTERVAL
    with serve_emulator(emulated.emulator, grace_period=GRACE_PERIOD) as running:
        yield running
