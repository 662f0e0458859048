"""The hand-written models and spec/kneo-v1.openapi.yaml agree field for field, both ways.

The response models are tolerant (ADR 0011); what they say ``spec/`` requires is their
strict twin (``strict_response_type``), and it is the twin that must equal the spec.
"""

from __future__ import annotations

import datetime
import inspect
import typing
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
import yaml

from kneo_proto import models
from kneo_proto.models import UNSET, KneoModel, ListPage
from kneo_proto.models._strict import strict_response_type

Json = dict[str, Any]

SPEC_PATH = Path(__file__).parents[2] / "spec" / "kneo-v1.openapi.yaml"
SCHEMA_REF = "#/components/schemas/"
# Schemas deliberately left as plain JSON objects (the contract returns dict[str, Any]).
OPEN_OBJECT_SCHEMAS = frozenset({"RunPolicyReportResponse"})
# Exported bases that carry shared fields but are no wire schema of their own.
ABSTRACT_MODELS = frozenset({"ListPage"})
PAGE_FIELDS = frozenset({"count", "total", "limit", "offset", "sort_by", "sort_order"})
LIST_RESPONSES = {
    "RunListResponse": "runs",
    "TraceResponse": "events",
    "CheckpointListResponse": "checkpoints",
    "HumanTaskListResponse": "tasks",
    "AuditEventListResponse": "events",
}
OPERATIONS = {
    ("get", "/v1/healthz"): "healthz",
    ("get", "/v1/livez"): "livez",
    ("get", "/v1/readyz"): "readyz",
    ("post", "/v1/runs"): "create_run",
    ("get", "/v1/runs"): "list_runs",
    ("get", "/v1/runs/{run_id}"): "get_run",
    ("post", "/v1/runs/{run_id}/cancel"): "cancel_run",
    ("post", "/v1/runs/{run_id}/continue"): "continue_run",
    ("get", "/v1/runs/{run_id}/replay"): "replay_run",
    ("get", "/v1/runs/{run_id}/trace"): "get_run_trace",
    ("get", "/v1/runs/{run_id}/checkpoints"): "list_run_checkpoints",
    ("get", "/v1/runs/{run_id}/checkpoints/diff"): "diff_run_checkpoints",
    ("get", "/v1/runs/{run_id}/policy-report"): "get_run_policy_report",
    ("get", "/v1/runs/{run_id}/recovery"): "get_run_recovery",
    ("get", "/v1/human-tasks"): "list_human_tasks",
    ("get", "/v1/human-tasks/{continuation_id}"): "get_human_task",
    ("post", "/v1/human-tasks/{continuation_id}/resume"): "resume_human_task",
    ("get", "/v1/audit-events"): "list_audit_events",
    ("get", "/v1/security/credentials"): "list_credentials",
    ("get", "/v1/policies/environment"): "list_environment_policies",
    ("get", "/v1/policies/environment/{environment}"): "get_environment_policy",
    ("put", "/v1/policies/environment/{environment}"): "put_environment_policy",
    ("post", "/v1/specs/validate"): "validate_spec",
    ("post", "/v1/specs/compile"): "compile_spec",
    ("post", "/v1/specs/explain"): "explain_spec",
    ("post", "/v1/specs/policy-report"): "spec_policy_report",
    ("post", "/v1/specs/run"): "run_spec",
}
# operationId -> (request body schema, success response schema).
SCHEMAS: dict[str, tuple[str | None, str]] = {
    "healthz": (None, "HealthResponse"),
    "livez": (None, "HealthResponse"),
    "readyz": (None, "HealthResponse"),
    "create_run": ("RunCreateRequest", "RunCreateResponse"),
    "list_runs": (None, "RunListResponse"),
    "get_run": (None, "RunStatusResponse"),
    "cancel_run": (None, "RunStatusResponse"),
    "continue_run": (None, "RunCreateResponse"),
    "replay_run": (None, "RunReplayResponse"),
    "get_run_trace": (None, "TraceResponse"),
    "list_run_checkpoints": (None, "CheckpointListResponse"),
    "diff_run_checkpoints": (None, "CheckpointDiffResponse"),
    "get_run_policy_report": (None, "RunPolicyReportResponse"),
    "get_run_recovery": (None, "RunRecoveryResponse"),
    "list_human_tasks": (None, "HumanTaskListResponse"),
    "get_human_task": (None, "HumanTaskResponse"),
    "resume_human_task": ("HumanResumeRequest", "HumanResumeResponse"),
    "list_audit_events": (None, "AuditEventListResponse"),
    "list_credentials": (None, "CredentialInventoryResponse"),
    "list_environment_policies": (None, "EnvironmentPolicyListResponse"),
    "get_environment_policy": (None, "EnvironmentPolicyResponse"),
    "put_environment_policy": ("EnvironmentPolicyRequest", "EnvironmentPolicyResponse"),
    "validate_spec": ("SpecValidateRequest", "SpecValidateResponse"),
    "compile_spec": ("SpecCompileRequest", "SpecCompileResponse"),
    "explain_spec": ("SpecExplainRequest", "SpecExplainResponse"),
    "spec_policy_report": ("SpecPolicyReportRequest", "SpecPolicyReportResponse"),
    "run_spec": ("RunCreateRequest", "RunCreateResponse"),
}
# Every open string of the spec (a string with `x-known-values`) and the constant naming them.
KNOWN_VALUES = {
    ("ErrorDetail", "code"): models.KNOWN_ERROR_CODES,
    ("Diagnostic", "severity"): models.KNOWN_DIAGNOSTIC_SEVERITIES,
    ("RunCreateResponse", "status"): models.KNOWN_RUN_STATUSES,
    ("RunStatusResponse", "status"): models.KNOWN_RUN_STATUSES,
    ("RunReplayResponse", "status"): models.KNOWN_RUN_STATUSES,
    ("TraceEvent", "event_type"): models.KNOWN_TRACE_EVENT_TYPES,
    ("CheckpointChange", "op"): models.KNOWN_CHANGE_OPS,
    ("RunRecoveryResponse", "recommended_action"): models.KNOWN_RECOVERY_ACTIONS,
    ("HumanTaskResponse", "status"): models.KNOWN_HUMAN_TASK_STATUSES,
    ("HumanTaskResponse", "decision"): models.KNOWN_HUMAN_DECISIONS,
    ("HumanResumeRequest", "decision"): models.KNOWN_HUMAN_DECISIONS,
    ("HumanResumeResponse", "status"): models.KNOWN_HUMAN_TASK_STATUSES,
    ("HumanResumeResponse", "decision"): models.KNOWN_HUMAN_DECISIONS,
    ("AuditEvent", "event_type"): models.KNOWN_AUDIT_EVENT_TYPES,
    **{(name, "sort_order"): models.KNOWN_SORT_ORDERS for name in LIST_RESPONSES},
    **{
        (name, "format"): models.KNOWN_SPEC_FORMATS
        for name in (
            "SpecValidateRequest",
            "SpecCompileRequest",
            "SpecExplainRequest",
            "SpecPolicyReportRequest",
        )
    },
}


def _exported_models() -> dict[str, type[KneoModel]]:
    exported = (getattr(models, name) for name in models.__all__)
    return {
        cls.__name__: cls
        for cls in exported
        if isinstance(cls, type) and issubclass(cls, KneoModel) and cls is not KneoModel
        if cls.__name__ not in ABSTRACT_MODELS
    }


MODELS = _exported_models()


@pytest.fixture(scope="module")
def spec() -> Json:
    return cast(Json, yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def model_schemas() -> dict[str, Json]:
    twins = {name: strict_response_type(cls) for name, cls in MODELS.items()}
    _, components = msgspec.json.schema_components(
        list(twins.values()), ref_template=SCHEMA_REF + "{name}"
    )
    # msgspec writes `format: date-time` only for timezone-constrained datetimes; the models
    # accept any RFC 3339 timestamp, so mark their datetime fields here.
    for name, cls in twins.items():
        for field in msgspec.structs.fields(cls):
            if datetime.datetime in (field.type, *typing.get_args(field.type)):
                components[name]["properties"][field.encode_name]["format"] = "date-time"
    return cast(dict[str, Json], components)


def _normalise(schema: Json) -> Json:
    """Keep what fixes the wire shape; drop prose, defaults, bounds and `x-` annotations."""
    out: Json = {key: schema[key] for key in ("type", "format", "enum", "$ref") if key in schema}
    if "items" in schema:
        out["items"] = _normalise(schema["items"])
    extra = schema.get("additionalProperties", True)
    if extra not in (True, {}):  # `true` and `{}` both mean an open object
        out["additionalProperties"] = _normalise(extra) if isinstance(extra, dict) else extra
    if "properties" in schema:
        out["properties"] = {key: _normalise(value) for key, value in schema["properties"].items()}
        out["required"] = sorted(schema.get("required", []))
    return out


def _operations(spec: Json) -> dict[tuple[str, str], Json]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def _resolve(spec: Json, ref: str) -> Json:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return cast(Json, node)


def _deref(spec: Json, node: Json) -> Json:
    return _resolve(spec, node["$ref"]) if "$ref" in node else node


def _content_schema(spec: Json, node: Json) -> str:
    """The schema name of a request body or response, following a shared-response `$ref`."""
    ref = str(_deref(spec, node)["content"]["application/json"]["schema"]["$ref"])
    assert ref.startswith(SCHEMA_REF), ref
    return ref.removeprefix(SCHEMA_REF)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_spec_schemas_and_models_name_the_same_set(spec: Json) -> None:
    schema_names = set(spec["components"]["schemas"]) - OPEN_OBJECT_SCHEMAS
    assert len(schema_names) > 30
    assert set(MODELS) == schema_names


def test_spec_open_object_schemas_have_no_model(spec: Json) -> None:
    for name in OPEN_OBJECT_SCHEMAS:
        schema = spec["components"]["schemas"][name]
        assert (schema["type"], schema["additionalProperties"]) == ("object", True)
        assert "properties" not in schema
        assert not hasattr(models, name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_spec_schema(spec: Json, model_schemas: dict[str, Json], name: str) -> None:
    expected = _normalise(spec["components"]["schemas"][name])
    assert expected["properties"]
    assert _normalise(model_schemas[name]) == expected


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_is_frozen_keyword_only_and_defaults_to_unset(name: str) -> None:
    cls = MODELS[name]
    assert cls.__struct_config__.frozen
    parameters = inspect.signature(cls).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    optional = [field for field in msgspec.structs.fields(cls) if not field.required]
    assert all(field.default is UNSET for field in optional)


def test_spec_open_strings_have_known_value_constants(spec: Json) -> None:
    schemas = spec["components"]["schemas"]
    found = {
        (name, prop): frozenset(value["x-known-values"])
        for name, schema in schemas.items()
        for prop, value in schema.get("properties", {}).items()
        if "x-known-values" in value
    }
    assert found
    assert found == KNOWN_VALUES
    open_strings = [schemas[name]["properties"][prop] for name, prop in found]
    assert all(value["type"] == "string" and "enum" not in value for value in open_strings)


def test_spec_has_25_paths_and_27_named_operations(spec: Json) -> None:
    assert len(spec["paths"]) == 25
    operations = _operations(spec)
    assert {key: operation["operationId"] for key, operation in operations.items()} == OPERATIONS


def test_spec_operation_refs_resolve(spec: Json) -> None:
    operations = _operations(spec)
    refs = [ref for operation in operations.values() for ref in _refs(operation)]
    assert len(refs) > len(operations)
    refs += _refs(spec["components"]["responses"])
    for ref in refs:
        assert _resolve(spec, ref), ref


def test_spec_operations_name_their_body_and_success_schemas(spec: Json) -> None:
    schemas = spec["components"]["schemas"]
    found: dict[str, tuple[str | None, str]] = {}
    for operation in _operations(spec).values():
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert len(success) == 1, operation["operationId"]
        body = operation.get("requestBody")
        request = _content_schema(spec, body) if body else None
        found[operation["operationId"]] = (
            request,
            _content_schema(spec, operation["responses"][success[0]]),
        )
    assert found == SCHEMAS
    assert all(name in schemas for pair in found.values() for name in pair if name)


def test_spec_operations_declare_the_shared_error_responses(spec: Json) -> None:
    for (method, path), operation in _operations(spec).items():
        expected = {"400", "403", "422", "429", "500", "503"}
        expected |= set() if operation.get("security") == [] else {"401"}
        expected |= {"404"} if "{" in path else set()
        expected |= {"409"} if method == "post" else set()
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert set(errors) == expected, (method, path)
        assert all(r["$ref"].startswith("#/components/responses/") for r in errors.values())


def test_spec_posts_take_idempotency_key_and_every_operation_request_id(spec: Json) -> None:
    for (method, path), operation in _operations(spec).items():
        headers = {p["$ref"] for p in operation["parameters"] if "$ref" in p}
        assert "#/components/parameters/RequestId" in headers, path
        idempotent = "#/components/parameters/IdempotencyKey" in headers
        assert idempotent == (method == "post"), (method, path)


def test_spec_responses_carry_request_id_retry_after_and_replayed(spec: Json) -> None:
    for (method, path), operation in _operations(spec).items():
        for code, response in operation["responses"].items():
            headers = _deref(spec, response)["headers"]
            assert "X-Request-ID" in headers, (path, code)
            assert ("Retry-After" in headers) == (code in {"429", "503"}), (path, code)
            replayed = method == "post" and code.startswith("2")
            assert ("Idempotent-Replayed" in headers) == replayed, (method, path, code)


def test_spec_list_responses_carry_paging_fields_and_items(spec: Json) -> None:
    schemas = spec["components"]["schemas"]
    for name, items in LIST_RESPONSES.items():
        assert set(schemas[name]["required"]) >= PAGE_FIELDS | {items}, name
        assert schemas[name]["properties"][items]["type"] == "array", name
        assert issubclass(MODELS[name], ListPage), name
    paged = {
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        for operation in _operations(spec).values()
        if any(p.get("$ref") == "#/components/parameters/Limit" for p in operation["parameters"])
    }
    assert paged == {SCHEMA_REF + name for name in LIST_RESPONSES}
