"""Fault injection through ``Emulator.handle``: what each fault answers, whether the
platform executed the request, and how rules match and get used up."""

from __future__ import annotations

import msgspec
import pytest

from kneo_client.testing._faults import Fault
from kneo_client.testing._reply import Delivery
from kneo_proto.models import ErrorResponse, RunListResponse
from tests.emulator.harness import Script, given

CREATE = {"spec_id": "my-spec"}


def runs(script: Script) -> int:
    return given(script.ok("GET", "/v1/runs", model=RunListResponse).total)


def test_scripted_faults_are_used_in_order_then_requests_answer_normally() -> None:
    script = Script()
    script.emulator.faults.script("POST", "/v1/runs", Fault.error(503), Fault.error(503))
    assert script.emulator.faults.pending() == 2
    statuses = [script.call("POST", "/v1/runs", CREATE).response.status for _ in range(3)]
    assert statuses == [503, 503, 201]
    assert script.emulator.faults.pending() == 0
    assert runs(script) == 1  # the 503s happened before the platform did anything


def test_error_fault_uses_the_spec_error_body_and_the_request_id() -> None:
    script = Script()
    script.emulator.faults.script("GET", "/v1/runs", Fault.error(503, retry_after=2.5))
    reply = script.call("GET", "/v1/runs", headers=(("X-Request-ID", "rid-1"),))
    error = msgspec.json.decode(reply.response.body, type=ErrorResponse).error
    assert (error.code, error.request_id) == ("unavailable", "rid-1")
    assert reply.response.header("retry-after") == "3"
    assert reply.response.header("x-request-id") == "rid-1"


def test_rate_limited_fault_answers_429_with_retry_after() -> None:
    script = Script()
    script.emulator.faults.script("*", "/v1/runs", Fault.rate_limited(retry_after=2))
    reply = script.call("GET", "/v1/runs")
    assert reply.response.status == 429
    assert reply.response.header("retry-after") == "2"
    assert msgspec.json.decode(reply.response.body, type=ErrorResponse).error.code == "rate_limited"


def test_latency_fault_answers_normally_but_late() -> None:
    script = Script()
    script.emulator.faults.script("GET", "/v1/healthz", Fault.latency(1.5))
    reply = script.call("GET", "/v1/healthz")
    assert (reply.response.status, reply.delay, reply.delivery) == (200, 1.5, Delivery.NORMAL)
    assert script.call("GET", "/v1/healthz").delay == 0


@pytest.mark.parametrize(
    ("fault", "delivery", "executed"),
    [
        (Fault.reset_before_response(), Delivery.RESET_BEFORE_RESPONSE, False),
        (Fault.reset_before_response(executed=True), Delivery.RESET_BEFORE_RESPONSE, True),
        (Fault.reset_mid_body(), Delivery.RESET_MID_BODY, True),
        (Fault.truncated_body(), Delivery.TRUNCATED_BODY, True),
    ],
)
def test_connection_faults_tell_the_server_how_to_break_the_answer(
    fault: Fault, delivery: Delivery, executed: bool
) -> None:
    script = Script()
    script.emulator.faults.script("POST", "/v1/runs", fault)
    reply = script.call("POST", "/v1/runs", CREATE, check=executed)
    assert reply.delivery is delivery
    assert runs(script) == int(executed)
    if executed:  # the body being cut short is the real one
        assert reply.response.status == 201


def test_malformed_json_fault_keeps_the_status_and_breaks_the_body() -> None:
    script = Script()
    script.emulator.faults.script("POST", "/v1/runs", Fault.malformed_json())
    reply = script.call("POST", "/v1/runs", CREATE, check=False)
    assert reply.response.status == 201
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(reply.response.body)
    assert runs(script) == 1


def test_lost_response_executes_and_a_retry_with_the_key_is_replayed() -> None:
    script = Script()
    script.emulator.faults.script("POST", "/v1/runs", Fault.lost_response())
    key = (("Idempotency-Key", "k"),)
    assert script.call("POST", "/v1/runs", CREATE, headers=key).response.status == 503
    retry = script.call("POST", "/v1/runs", CREATE, headers=key)
    assert (retry.response.status, retry.response.header("idempotent-replayed")) == (201, "true")
    assert script.emulator.counters.executions["k"] == 1
    assert runs(script) == 1


def test_always_applies_until_clear() -> None:
    script = Script()
    script.emulator.faults.always("GET", "/v1/readyz", Fault.error(503))
    assert [script.call("GET", "/v1/readyz").response.status for _ in range(3)] == [503] * 3
    script.emulator.faults.clear()
    assert script.call("GET", "/v1/readyz").response.status == 200


def test_scripted_faults_come_before_persistent_ones() -> None:
    script = Script()
    faults = script.emulator.faults
    faults.always("GET", "/v1/runs", Fault.error(500))
    faults.script("GET", "/v1/runs", Fault.error(429))
    assert [script.call("GET", "/v1/runs").response.status for _ in range(2)] == [429, 500]


@pytest.mark.parametrize(
    ("method", "pattern", "hits"),
    [
        ("GET", "/v1/runs/{run_id}", True),
        ("*", "/v1/runs/*", True),
        ("get", "/v1/runs/run-000001", True),
        ("POST", "/v1/runs/{run_id}", False),
        ("GET", "/v1/runs", False),
        ("GET", "/v1/runs/*/trace", False),
    ],
)
def test_fault_patterns_match_method_and_path_segments(
    method: str, pattern: str, hits: bool
) -> None:
    script = Script()
    script.call("POST", "/v1/runs", CREATE)
    script.emulator.faults.script(method, pattern, Fault.error(503))
    assert (script.call("GET", "/v1/runs/run-000001").response.status == 503) is hits
    assert script.emulator.faults.pending() == int(not hits)


def test_readiness_can_be_switched_off() -> None:
    script = Script()
    script.emulator.ready = False
    reply = script.call("GET", "/v1/readyz", key=False)
    assert reply.response.status == 503
    error = msgspec.json.decode(reply.response.body, type=ErrorResponse).error
    assert given(error.details)["checks"]["database"] == {
        "ok": False,
        "detail": "the emulator was told it is not ready",
    }
    assert script.call("GET", "/v1/livez", key=False).response.status == 200
    script.emulator.ready = True
    assert script.call("GET", "/v1/readyz", key=False).response.status == 200
