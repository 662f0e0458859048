"""Environment policies (stored, replaced, enforced), credentials and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest

from kneo_proto.models import (
    AuditEventListResponse,
    CredentialInventoryResponse,
    EnvironmentPolicyListResponse,
    EnvironmentPolicyResponse,
    RunCreateResponse,
    RunStatusResponse,
    TraceResponse,
)
from tests.emulator.harness import Script, given

POLICY = "/v1/policies/environment"


def put_policy(script: Script, environment: str, body: dict[str, Any]) -> EnvironmentPolicyResponse:
    return script.ok("PUT", f"{POLICY}/{environment}", body, model=EnvironmentPolicyResponse)


def test_policies_start_with_dev_staging_and_prod() -> None:
    listed = Script().ok("GET", POLICY, model=EnvironmentPolicyListResponse)
    assert [p.environment for p in listed.policies] == ["dev", "prod", "staging"]
    prod = listed.policies[1]
    assert prod.require_human_review
    assert prod.allowed_spec_ids == ["support-triage", "nightly-report"]


def test_policy_put_replaces_the_whole_policy_and_bumps_the_version() -> None:
    script = Script()
    first = put_policy(script, "staging", {"allowed_tools": ["http.get"], "max_run_seconds": 30})
    assert (first.version, first.allowed_tools, first.max_run_seconds) == (2, ["http.get"], 30)
    assert first.denied_spec_ids == []  # omitted: back to the default, not kept
    second = put_policy(script, "staging", {})
    assert second.version == 3
    assert second.allowed_tools is second.max_run_seconds  # both UNSET: no limits
    assert script.ok("GET", f"{POLICY}/staging", model=EnvironmentPolicyResponse) == second


def test_policy_put_creates_a_new_environment_at_version_1() -> None:
    script = Script()
    assert put_policy(script, "qa", {"denied_spec_ids": ["my-spec"]}).version == 1
    assert script.ok("GET", POLICY, model=EnvironmentPolicyListResponse).count == 4


@pytest.mark.parametrize(
    "body",
    [{"max_run_seconds": 0}, {"allowed_tools": "http.get"}, {"require_human_review": "yes"}, []],
)
def test_policy_put_validates_the_body(body: Any) -> None:
    script = Script()
    script.fails("PUT", f"{POLICY}/dev", body, status=422, code="validation_error")
    assert script.ok("GET", f"{POLICY}/dev", model=EnvironmentPolicyResponse).version == 1


def test_policy_put_rejects_malformed_json_with_400() -> None:
    script = Script()
    script.fails("PUT", f"{POLICY}/dev", raw_body=b"{nope", status=400, code="validation_error")


def test_unknown_environment_policy_is_404() -> None:
    Script().fails("GET", f"{POLICY}/moon", status=404, code="not_found")


@pytest.mark.parametrize(
    ("environment", "spec_id", "rule"),
    [
        ("staging", "always-fails", "denied_spec_ids"),
        ("prod", "my-spec", "allowed_spec_ids"),
    ],
)
def test_policy_refuses_a_run_the_environment_does_not_allow(
    environment: str, spec_id: str, rule: str
) -> None:
    script = Script()
    body = {"spec_id": spec_id, "environment": environment}
    error = script.fails("POST", "/v1/runs", body, status=403, code="policy_denied")
    assert rule in given(error.details)["rules"]
    assert script.ok("GET", "/v1/audit-events", model=AuditEventListResponse).total == 0


def test_policy_refuses_tools_outside_the_allow_list() -> None:
    script = Script()
    put_policy(script, "dev", {"allowed_tools": ["crm.lookup"]})
    error = script.fails(
        "POST", "/v1/runs", {"spec_id": "my-spec"}, status=403, code="policy_denied"
    )
    assert "http.get" in given(error.message)


def test_policy_refuses_a_run_longer_than_max_run_seconds() -> None:
    script = Script()
    put_policy(script, "dev", {"max_run_seconds": 2})  # nightly-report runs 3 steps of 1 s
    error = script.fails(
        "POST", "/v1/runs", {"spec_id": "nightly-report"}, status=403, code="policy_denied"
    )
    assert given(error.details)["rules"] == ["max_run_seconds"]
    script.ok("POST", "/v1/runs", {"spec_id": "my-spec"}, model=RunCreateResponse)


def test_policy_requiring_review_pauses_every_run_before_it_acts() -> None:
    script = Script()
    run = script.ok(
        "POST",
        "/v1/runs",
        {"spec_id": "nightly-report", "environment": "prod"},
        model=RunCreateResponse,
    )
    script.advance(60)
    paused = script.ok("GET", f"/v1/runs/{run.run_id}", model=RunStatusResponse)
    assert paused.status == "paused_human_review"
    page = script.ok("GET", f"/v1/runs/{run.run_id}/trace", model=TraceResponse)
    assert "tool_call" not in [e.event_type for e in page.events]


def test_tool_removed_from_the_policy_mid_run_fails_the_run() -> None:
    script = Script()
    run = script.ok("POST", "/v1/runs", {"spec_id": "nightly-report"}, model=RunCreateResponse)
    script.advance(1)  # started, calling warehouse.query
    put_policy(script, "dev", {"allowed_tools": ["warehouse.query"]})
    script.advance(60)
    failed = script.ok("GET", f"/v1/runs/{run.run_id}", model=RunStatusResponse)
    assert failed.status == "failed"
    assert given(failed.error).code == "policy_denied"
    report = script.ok("GET", f"/v1/runs/{run.run_id}/policy-report", model=dict[str, Any])
    assert [d["tool"] for d in report["denied"]] == ["reports.publish"]


def test_run_in_an_unknown_environment_is_refused() -> None:
    script = Script()
    body = {"spec_id": "my-spec", "environment": "moon"}
    script.fails("POST", "/v1/runs", body, status=422, code="validation_error")


def test_credentials_are_references_without_secrets() -> None:
    script = Script()
    inventory = script.ok("GET", "/v1/security/credentials", model=CredentialInventoryResponse)
    assert inventory.count == len(inventory.credentials) == 4
    raw = script.call("GET", "/v1/security/credentials").response.body
    for word in (b"secret", b"token_value", b"password", script.emulator.api_key.encode()):
        assert word not in raw
    fields = set(
        script.ok("GET", "/v1/security/credentials", model=dict[str, Any])["credentials"][0]
    )
    assert fields <= {"name", "provider", "kind", "scopes", "created_at", "last_rotated_at"}


# -- audit -------------------------------------------------------------------------------


def rid(value: str) -> tuple[tuple[str, str], ...]:
    return (("X-Request-ID", value),)


def test_audit_records_one_event_per_mutation_with_principal_and_request_id() -> None:
    script = Script()
    run = script.ok(
        "POST",
        "/v1/runs",
        {"spec_id": "support-triage"},
        model=RunCreateResponse,
        headers=rid("r-create"),
    )
    script.advance(60)
    task = script.ok("GET", f"/v1/runs/{run.run_id}", model=RunStatusResponse).continuation_id
    script.call(
        "POST", f"/v1/human-tasks/{task}/resume", {"decision": "approve"}, headers=rid("r-resume")
    )
    script.call("POST", f"/v1/runs/{run.run_id}/continue", headers=rid("r-continue"))
    other = script.ok(
        "POST", "/v1/runs", {"spec_id": "my-spec"}, model=RunCreateResponse, headers=rid("r-other")
    )
    script.call("POST", f"/v1/runs/{other.run_id}/cancel", headers=rid("r-cancel"))
    script.call("PUT", f"{POLICY}/qa", {}, headers=rid("r-policy"))
    script.advance(60)
    script.call("POST", f"/v1/runs/{other.run_id}/cancel")  # already cancelled: no event
    script.call("GET", "/v1/runs")  # reads are not audited
    events = script.ok("GET", "/v1/audit-events?sort_order=asc", model=AuditEventListResponse)
    assert [(e.event_type, e.request_id, e.principal) for e in events.events] == [
        ("run.created", "r-create", "operator"),
        ("human_task.resumed", "r-resume", "operator"),
        ("run.continued", "r-continue", "operator"),
        ("run.created", "r-other", "operator"),
        ("run.cancelled", "r-cancel", "operator"),
        ("policy.updated", "r-policy", "operator"),
    ]
    assert [e.run_id for e in events.events[:3]] == [run.run_id] * 3


def test_audit_filters_by_event_type_run_and_principal() -> None:
    script = Script()
    script.emulator.add_key("bot-key", principal="svc:bot")
    first = script.ok("POST", "/v1/runs", {"spec_id": "my-spec"}, model=RunCreateResponse)
    script.call("POST", "/v1/runs", {"spec_id": "my-spec"}, key="bot-key")
    script.call("POST", f"/v1/runs/{first.run_id}/cancel")

    def types(query: str) -> list[str]:
        page = script.ok("GET", f"/v1/audit-events?{query}", model=AuditEventListResponse)
        return [e.event_type for e in page.events]

    assert types("event_type=run.created") == ["run.created", "run.created"]
    assert types(f"run_id={first.run_id}&sort_order=asc") == ["run.created", "run.cancelled"]
    assert types("principal=svc:bot") == ["run.created"]
    assert types("principal=svc:bot&event_type=run.cancelled") == []
    assert types("sort_by=event_type&sort_order=asc") == [
        "run.cancelled",
        "run.created",
        "run.created",
    ]
