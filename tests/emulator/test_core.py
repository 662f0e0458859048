"""The emulator's request pipeline, driven through ``Emulator.handle``: auth, request IDs,
routing, idempotency, paging bounds, counters, and every spec operation served."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from kneo_client.testing._emulator import Emulator
from kneo_client.testing._faults import Fault
from kneo_proto.models import (
    AuditEventListResponse,
    ErrorResponse,
    RunCreateResponse,
    RunListResponse,
    RunStatusResponse,
)
from tests.emulator.harness import SPEC_OPS, Script, segment
from tests.support.spec import spec_operation_count

MUTATIONS = sorted(op for op, (method, _, _) in SPEC_OPS.items() if method in ("POST", "PUT"))


def concrete(template: str) -> str:
    return (
        template.replace("{run_id}", "run-000001")
        .replace("{continuation_id}", "cont-000001")
        .replace("{environment}", "dev")
    )


# -- auth --------------------------------------------------------------------------------


def test_emulator_rejects_a_missing_key_with_401_and_a_challenge() -> None:
    script = Script()
    reply = script.call("GET", "/v1/runs", key=False)
    assert reply.response.status == 401
    assert reply.response.header("www-authenticate") == 'Bearer realm="kneo"'
    body = msgspec.json.decode(reply.response.body, type=ErrorResponse)
    assert body.error.code == "unauthorized"


@pytest.mark.parametrize("scheme", ["bearer", "header"])
def test_emulator_rejects_a_wrong_key_without_echoing_it(scheme: str) -> None:
    script = Script()
    reply = script.call("GET", "/v1/runs", key="not-the-key-42", scheme=scheme)
    assert reply.response.status == 401
    assert b"not-the-key-42" not in reply.response.body


@pytest.mark.parametrize("scheme", ["bearer", "header"])
def test_emulator_accepts_both_auth_schemes(scheme: str) -> None:
    script = Script()
    script.ok("GET", "/v1/runs", model=RunListResponse, scheme=scheme)


@pytest.mark.parametrize("probe", ["healthz", "livez", "readyz"])
def test_emulator_serves_health_probes_without_a_key(probe: str) -> None:
    assert Script().call("GET", f"/v1/{probe}", key=False).response.status == 200


def test_emulator_read_only_key_can_read() -> None:
    script = Script()
    script.ok("GET", "/v1/runs", model=RunListResponse, key=script.emulator.read_only_key)


@pytest.mark.parametrize("operation", MUTATIONS)
def test_emulator_read_only_key_gets_403_on_every_mutation(operation: str) -> None:
    script = Script()
    method, template, _ = SPEC_OPS[operation]
    body = {"spec_id": "my-spec", "spec": "x", "decision": "approve"}
    error = script.fails(
        method,
        concrete(template),
        body,
        status=403,
        code="forbidden",
        key=script.emulator.read_only_key,
    )
    assert error.details == {"principal": "read-only"}
    assert script.emulator.counters.executions == {}


def test_emulator_keys_are_generated_distinct_and_hidden_from_repr() -> None:
    emulator = Emulator()
    assert emulator.api_key != emulator.read_only_key
    assert emulator.api_key not in repr(emulator)
    with pytest.raises(ValueError, match="differ"):
        Emulator(api_key="same", read_only_key="same")


def test_emulator_added_key_acts_as_its_principal() -> None:
    script = Script()
    script.emulator.add_key("ci-key", principal="svc:ci")
    run = script.ok(
        "POST", "/v1/runs", {"spec_id": "my-spec"}, model=RunCreateResponse, key="ci-key"
    )
    events = script.ok("GET", "/v1/audit-events?principal=svc:ci", model=AuditEventListResponse)
    assert [(e.principal, e.run_id) for e in events.events] == [("svc:ci", run.run_id)]


# -- request IDs and routing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/runs", 200), ("GET", "/v1/runs/nope", 404), ("GET", "/v1/nowhere", 404)],
)
def test_emulator_echoes_the_request_id(method: str, path: str, status: int) -> None:
    reply = Script().call(method, path, headers=(("X-Request-ID", "rid-7"),))
    assert reply.response.status == status
    assert reply.response.header("x-request-id") == "rid-7"


def test_emulator_generates_distinct_request_ids_and_puts_them_in_error_bodies() -> None:
    script = Script()
    first = script.call("GET", "/v1/runs/nope").response
    second = script.call("GET", "/v1/runs/nope").response
    assert first.header("x-request-id") != second.header("x-request-id")
    error = msgspec.json.decode(first.body, type=ErrorResponse).error
    assert error.request_id == first.header("x-request-id")


def test_emulator_answers_405_with_allow_for_a_known_path() -> None:
    reply = Script().call("DELETE", "/v1/runs")
    assert reply.response.status == 405
    assert reply.response.header("allow") == "GET, POST"


def test_emulator_does_not_match_a_trailing_slash() -> None:
    assert Script().call("GET", "/v1/runs/").response.status == 404


def test_emulator_percent_decodes_path_parameters() -> None:
    script = Script()
    script.ok("PUT", f"/v1/policies/environment/{segment('qa team')}", {}, model=dict[str, Any])
    policy = script.ok("GET", "/v1/policies/environment/qa%20team", model=dict[str, Any])
    assert policy["environment"] == "qa team"


# -- every operation ---------------------------------------------------------------------


def test_emulator_serves_every_spec_operation_with_conforming_bodies() -> None:
    script = Script()
    review = script.ok("POST", "/v1/runs", {"spec_id": "support-triage"}, model=RunCreateResponse)
    script.advance(10)
    paused = script.ok("GET", f"/v1/runs/{review.run_id}", model=RunStatusResponse)
    cont = paused.continuation_id
    spec = "name: demo\nsteps:\n  - name: a\n    kind: tool\n    tool: http.get\n"
    run = review.run_id
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/v1/healthz", None),
        ("GET", "/v1/livez", None),
        ("GET", "/v1/readyz", None),
        ("POST", "/v1/runs", {"spec_id": "my-spec"}),
        ("GET", "/v1/runs?status=paused_human_review", None),
        ("GET", f"/v1/runs/{run}", None),
        ("GET", f"/v1/runs/{run}/replay", None),
        ("GET", f"/v1/runs/{run}/trace?sort_by=sequence", None),
        ("GET", f"/v1/runs/{run}/checkpoints", None),
        ("GET", f"/v1/runs/{run}/checkpoints/diff?from_sequence=0", None),
        ("GET", f"/v1/runs/{run}/policy-report", None),
        ("GET", f"/v1/runs/{run}/recovery", None),
        ("GET", "/v1/human-tasks?status=pending", None),
        ("GET", f"/v1/human-tasks/{cont}", None),
        ("POST", f"/v1/human-tasks/{cont}/resume", {"decision": "approve"}),
        ("POST", f"/v1/runs/{run}/continue", None),
        ("POST", f"/v1/runs/{run}/cancel", None),
        ("GET", "/v1/audit-events?event_type=run.created", None),
        ("GET", "/v1/security/credentials", None),
        ("GET", "/v1/policies/environment", None),
        ("GET", "/v1/policies/environment/prod", None),
        ("PUT", "/v1/policies/environment/dev", {"denied_spec_ids": ["legacy"]}),
        ("POST", "/v1/specs/validate", {"spec": spec}),
        ("POST", "/v1/specs/compile", {"spec": spec}),
        ("POST", "/v1/specs/explain", {"spec": spec}),
        ("POST", "/v1/specs/policy-report", {"spec": spec, "environment": "prod"}),
        ("POST", "/v1/specs/run", {"spec": spec}),
    ]
    script.emulator.counters.reset()
    for method, path, body in calls:
        reply = script.call(method, path, body)  # checks the status and body against spec/
        assert 200 <= reply.response.status < 300, (path, reply.response.body)
    assert set(script.emulator.counters.operations) == set(SPEC_OPS)
    assert len(SPEC_OPS) == spec_operation_count()


# -- idempotency -------------------------------------------------------------------------


def keyed(key: str) -> tuple[tuple[str, str], ...]:
    return (("Idempotency-Key", key),)


def test_emulator_replays_a_keyed_post_with_the_original_status_and_body() -> None:
    script = Script()
    first = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k1"))
    script.advance(30)  # the run completed meanwhile; the replay still says "queued"
    again = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k1"))
    assert (again.response.status, again.response.body) == (201, first.response.body)
    assert again.response.header("idempotent-replayed") == "true"
    assert first.response.header("idempotent-replayed") is None
    assert script.emulator.counters.executions["k1"] == 1
    assert script.ok("GET", "/v1/runs", model=RunListResponse).total == 1


def test_emulator_compares_json_payloads_by_value() -> None:
    script = Script()
    script.call(
        "POST",
        "/v1/runs",
        raw_body=b'{"spec_id":"my-spec","inputs":{"a":1,"b":2}}',
        headers=keyed("k"),
    )
    again = script.call(
        "POST",
        "/v1/runs",
        raw_body=b'{ "inputs": {"b": 2, "a": 1}, "spec_id": "my-spec" }',
        headers=keyed("k"),
    )
    assert again.response.header("idempotent-replayed") == "true"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/runs", {"spec_id": "support-triage"}), ("/v1/specs/run", {"spec_id": "my-spec"})],
)
def test_emulator_rejects_a_reused_key_with_another_payload(path: str, body: Any) -> None:
    script = Script()
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k"))
    script.fails(
        "POST", path, body, status=409, code="idempotency_key_mismatch", headers=keyed("k")
    )
    assert script.emulator.counters.executions["k"] == 1


def test_emulator_answers_in_progress_while_the_first_answer_is_held_back() -> None:
    script = Script()
    script.emulator.faults.script("POST", "/v1/runs", Fault.latency(5))
    first = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("slow"))
    assert (first.response.status, first.delay) == (201, 5)
    script.advance(2)
    busy = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("slow"))
    assert busy.response.status == 409
    assert busy.response.header("retry-after") == "3"
    assert msgspec.json.decode(busy.response.body, type=ErrorResponse).error.code == (
        "idempotency_key_in_progress"
    )
    script.advance(3)
    done = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("slow"))
    assert done.response.body == first.response.body
    assert script.emulator.counters.executions["slow"] == 1


def test_emulator_forgets_keys_after_the_ttl() -> None:
    script = Script(Emulator(idempotency_ttl=60))
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k"))
    script.advance(59)
    assert (
        script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k")).response.header(
            "idempotent-replayed"
        )
        == "true"
    )
    script.advance(1)
    fresh = script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, headers=keyed("k"))
    assert fresh.response.header("idempotent-replayed") is None
    assert script.emulator.counters.executions["k"] == 2


def test_emulator_replays_a_keyed_error_too() -> None:
    script = Script()
    script.fails(
        "POST",
        "/v1/runs",
        {"spec_id": "nope"},
        status=422,
        code="validation_error",
        headers=keyed("k"),
    )
    again = script.call("POST", "/v1/runs", {"spec_id": "nope"}, headers=keyed("k"))
    assert (again.response.status, again.response.header("idempotent-replayed")) == (422, "true")


def test_emulator_executes_every_unkeyed_post() -> None:
    script = Script()
    for _ in range(3):
        script.call("POST", "/v1/runs", {"spec_id": "my-spec"})
    assert script.ok("GET", "/v1/runs", model=RunListResponse).total == 3


@pytest.mark.parametrize("key", ["", "k" * 257])
def test_emulator_rejects_an_idempotency_key_out_of_bounds(key: str) -> None:
    script = Script()
    script.fails(
        "POST",
        "/v1/runs",
        {"spec_id": "my-spec"},
        status=400,
        code="validation_error",
        headers=keyed(key),
    )


# -- paging ------------------------------------------------------------------------------

LISTS = [
    "/v1/runs",
    "/v1/human-tasks",
    "/v1/audit-events",
    "/v1/runs/run-000001/trace",
    "/v1/runs/run-000001/checkpoints",
]
BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=ten", "limit"),
    ("offset=-1", "offset"),
    ("offset=1.5", "offset"),
    ("sort_by=colour", "sort_by"),
    ("sort_order=up", "sort_order"),
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(("query", "parameter"), BAD_QUERIES)
def test_emulator_rejects_paging_out_of_bounds(path: str, query: str, parameter: str) -> None:
    script = Script()
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"})
    error = script.fails("GET", f"{path}?{query}", status=422, code="validation_error")
    assert error.details == {"parameter": parameter}


@pytest.mark.parametrize("path", LISTS)
def test_emulator_accepts_the_paging_bounds(path: str) -> None:
    script = Script()
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"})
    for query in ("limit=1", "limit=1000&offset=0", "offset=99999"):
        assert script.call("GET", f"{path}?{query}").response.status == 200


def test_emulator_pages_runs_without_gaps_or_repeats() -> None:
    script = Script()
    created = []
    for _ in range(5):
        created.append(
            script.ok("POST", "/v1/runs", {"spec_id": "my-spec"}, model=RunCreateResponse).run_id
        )
    seen: list[str] = []
    for offset in range(0, 6, 2):
        page = script.ok(
            "GET",
            f"/v1/runs?limit=2&offset={offset}&sort_by=created_at&sort_order=asc",
            model=RunListResponse,
        )
        assert (page.total, page.limit, page.offset, page.count) == (5, 2, offset, len(page.runs))
        assert (page.sort_by, page.sort_order) == ("created_at", "asc")
        seen += [r.run_id for r in page.runs]
    assert seen == created
    newest = script.ok("GET", "/v1/runs?sort_by=created_at", model=RunListResponse)
    assert [r.run_id for r in newest.runs] == created[::-1]  # the default order is desc


def test_emulator_filters_runs_by_status() -> None:
    script = Script()
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"})
    script.call("POST", "/v1/runs", {"spec_id": "always-fails"})
    script.advance(60)
    failed = script.ok("GET", "/v1/runs?status=failed", model=RunListResponse)
    assert [(r.spec_id, r.status) for r in failed.runs] == [("always-fails", "failed")]
    assert failed.total == 1


# -- counters ----------------------------------------------------------------------------


def test_emulator_counts_requests_per_path_and_resets() -> None:
    script = Script()
    script.emulator.faults.script("GET", "/v1/runs", Fault.error(503))
    for _ in range(3):
        script.call("GET", "/v1/runs")
    script.call("GET", "/v1/nowhere")
    counters = script.emulator.counters
    assert counters.requests["/v1/runs"] == 3
    assert counters.requests["/v1/nowhere"] == 1
    assert counters.operations["list_runs"] == 3
    counters.reset()
    assert not counters.requests
    assert not counters.operations


def test_emulator_has_one_handler_per_declared_endpoint() -> None:
    from kneo_client.testing._routes import HANDLERS, ROUTES
    from kneo_proto import endpoints

    declared = {endpoint.name for endpoint in endpoints.ALL}
    assert len(declared) == spec_operation_count()
    assert set(HANDLERS) == declared
    assert [route.operation_id for route in ROUTES] == [e.name for e in endpoints.ALL]
