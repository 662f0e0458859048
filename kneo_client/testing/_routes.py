"""The route table: each of the spec's 27 operations, declared once, and path matching.

Invariants: a route is a method, a path template and an operation ID exactly as in
``spec/kneo-v1.openapi.yaml``; a ``{name}`` segment matches one whole path segment, which is
percent-decoded before a handler sees it; HEAD is answered as GET. A path no route knows is a
404, a known path with another method a 405 naming the allowed methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from kneo_client.testing import (
    _ops_platform as platform_ops,
    _ops_runs as run_ops,
    _ops_specs as spec_ops,
)
from kneo_client.testing._platform import Platform
from kneo_client.testing._wire import ApiError, Context, Outcome
from kneo_proto import endpoints
from kneo_proto.models import ERROR_CODE_NOT_FOUND

__all__ = ["HANDLERS", "ROUTES", "Handler", "Route", "find_route"]

Handler = Callable[[Platform, Context], Outcome]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation of the spec and the handler that serves it.

    Attributes:
        method: The HTTP method.
        template: The spec's path template, e.g. ``/v1/runs/{run_id}``.
        operation_id: The spec's ``operationId``.
        handler: Answers the request.
        public: Served without authentication (the health probes).
    """

    method: str
    template: str
    operation_id: str
    handler: Handler
    public: bool = False

    def match(self, segments: list[str]) -> Mapping[str, str] | None:
        """Return the path parameters when ``segments`` fit the template, else None."""
        wanted = self.template[1:].split("/")
        if len(wanted) != len(segments):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(wanted, segments, strict=True):
            if pattern.startswith("{"):
                if not segment:
                    return None
                params[pattern[1:-1]] = unquote(segment)
            elif pattern != segment:
                return None
        return params


# The handler of each operation; method and path come from the one declaration of every
# endpoint in kneo_proto.endpoints, so the emulator cannot disagree with the clients.
HANDLERS: Mapping[str, Handler] = {
    "healthz": platform_ops.healthz,
    "livez": platform_ops.livez,
    "readyz": platform_ops.readyz,
    "create_run": run_ops.create_run,
    "list_runs": run_ops.list_runs,
    "get_run": run_ops.get_run,
    "cancel_run": run_ops.cancel_run,
    "continue_run": run_ops.continue_run,
    "replay_run": run_ops.replay_run,
    "get_run_trace": run_ops.get_run_trace,
    "list_run_checkpoints": run_ops.list_run_checkpoints,
    "diff_run_checkpoints": run_ops.diff_run_checkpoints,
    "get_run_policy_report": run_ops.get_run_policy_report,
    "get_run_recovery": run_ops.get_run_recovery,
    "list_human_tasks": run_ops.list_human_tasks,
    "get_human_task": run_ops.get_human_task,
    "resume_human_task": run_ops.resume_human_task,
    "list_audit_events": platform_ops.list_audit_events,
    "list_credentials": platform_ops.list_credentials,
    "list_environment_policies": platform_ops.list_environment_policies,
    "get_environment_policy": platform_ops.get_environment_policy,
    "put_environment_policy": platform_ops.put_environment_policy,
    "validate_spec": spec_ops.validate_spec,
    "compile_spec": spec_ops.compile_spec,
    "explain_spec": spec_ops.explain_spec,
    "spec_policy_report": spec_ops.spec_policy_report,
    "run_spec": spec_ops.run_spec,
}
_PUBLIC = frozenset({"healthz", "livez", "readyz"})

ROUTES: tuple[Route, ...] = tuple(
    Route(
        declared.route.method,
        declared.route.template,
        declared.name,
        HANDLERS[declared.name],
        public=declared.name in _PUBLIC,
    )
    for declared in endpoints.ALL
)


def find_route(method: str, path: str) -> tuple[Route, Mapping[str, str]]:
    """Return the route serving ``method path`` and its path parameters.

    Raises:
        ApiError: 404 ``not_found`` for an unknown path; 405 for a known path whose
            operations use other methods (with ``Allow``).
    """
    segments = path[1:].split("/") if path.startswith("/") else []
    wanted = "GET" if method == "HEAD" else method
    allowed: list[str] = []
    for route in ROUTES:
        params = route.match(segments)
        if params is None:
            continue
        if route.method == wanted:
            return route, params
        allowed.append(route.method)
    if allowed:
        methods = ", ".join(sorted(set(allowed)))
        message = f"{method} is not allowed on {path}; use {methods}"
        raise ApiError(405, "method_not_allowed", message, headers=(("Allow", methods),))
    raise ApiError(404, ERROR_CODE_NOT_FOUND, f"no operation at {path}", {"path": path})
