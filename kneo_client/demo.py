"""The README's main job: a short tour of kneo-client.

With ``KNEO_URL`` and ``KNEO_API_KEY`` set, it talks to that platform (read-only calls).
Otherwise it runs against a small canned platform in memory, printing each request exactly
as kneo-client builds it (credentials redacted) and each decoded result, including a
request that survives a 503 by retrying with the same idempotency key.

Run it with ``python -m kneo_client.demo``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import msgspec

from kneo_client import Profile, SyncKneoClient
from kneo_drivers.memory import MemoryDriver
from kneo_proto import Request, Response, redact_headers

_NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).isoformat()
_RUN: dict[str, Any] = {
    "run_id": "run_demo_1",
    "spec_id": "support-triage",
    "status": "queued",
    "environment": "dev",
    "created_at": _NOW,
    "updated_at": _NOW,
}


class CannedPlatform:
    """Answers a handful of /v1 requests; fails the first POST /v1/runs with a 503."""

    def __init__(self) -> None:
        self.failed_once = False

    def __call__(self, request: Request) -> Response:
        """Print ``request`` and answer it."""
        show_request(request)
        echo = (("X-Request-ID", request.header("x-request-id") or ""),)
        if request.method == "POST" and request.target == "/v1/runs" and not self.failed_once:
            self.failed_once = True
            body = {"error": {"code": "unavailable", "message": "warming up"}}
            print("  <- 503 Service Unavailable (the client will retry)")
            return Response(503, echo, msgspec.json.encode(body))
        path = request.target.split("?")[0]
        payload = self.answer(request.method, path)
        print("  <- 200 OK")
        return Response(200, echo, msgspec.json.encode(payload))

    @staticmethod
    def answer(method: str, path: str) -> Any:
        """Return the canned JSON payload for ``method`` and ``path``."""
        if path == "/v1/readyz":
            return {"ok": True, "service": "kneo-serv-platform (canned)", "version": "0.4.0"}
        if method == "POST" and path == "/v1/runs":
            return {"run_id": _RUN["run_id"], "status": "queued", "created_at": _NOW}
        if path.startswith("/v1/runs/"):
            return {**_RUN, "status": "completed", "completed_at": _NOW}
        return {
            "runs": [_RUN],
            "count": 1,
            "total": 1,
            "limit": 5,
            "offset": 0,
            "sort_by": "updated_at",
            "sort_order": "desc",
        }


def show_request(request: Request) -> None:
    """Print a request as sent, with credential headers redacted."""
    print(f"  -> {request.method} {request.url}")
    for name, value in redact_headers(dict(request.headers)).items():
        print(f"       {name}: {value}")
    if request.body:
        print(f"       body: {request.body.decode()}")


def tour(client: SyncKneoClient, *, writes: bool) -> None:
    """Run the tour's calls, printing each decoded result."""
    print("\n1. readiness")
    print("  =", client.platform.health.readyz())
    if writes:
        print("\n2. create a run (the first attempt meets a 503)")
        created = client.platform.runs.create.raw({"spec_id": "support-triage"})
        print(f"  = {created.parsed}")
        print(f"    attempts={created.attempts} idempotency_key={created.idempotency_key}")
        print("\n3. wait for it")
        done = client.platform.runs.wait_for_completion(created.parsed.run_id, timeout=30)
        print(f"  = status {done.status!r}")
    print("\n4. the latest runs")
    for run in client.platform.runs.list(limit=5).runs:
        print(f"  = {run.run_id}: {run.status}")


def main() -> None:
    """Run the tour against $KNEO_URL, or against the canned in-memory platform."""
    if os.environ.get("KNEO_URL") and os.environ.get("KNEO_API_KEY"):
        print(f"kneo-client demo against {os.environ['KNEO_URL']} (read-only calls)")
        with SyncKneoClient.from_profile() as client:
            tour(client, writes=False)
        return
    print("kneo-client demo against a canned in-memory platform (set KNEO_URL and KNEO_API_KEY")
    print("to run it against a real one)")
    profile = Profile(name="demo", url="https://kneo.invalid", api_key="demo-key")
    with SyncKneoClient(profile, driver=MemoryDriver(CannedPlatform())) as client:
        tour(client, writes=True)


if __name__ == "__main__":
    main()
