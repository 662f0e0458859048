"""What goes on the wire for every endpoint: method, path, query, body, headers and keys
(contract: Idempotency, Request-ID, Logging helpers, Pagination; plan T07, T35, T36)."""

from __future__ import annotations

import enum
import inspect
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from kneo_proto import (
    ENDPOINTS,
    IDEMPOTENCY_KEY_HEADER,
    MAX_KEY_LENGTH,
    REDACTED,
    REQUEST_ID_HEADER,
    AuthScheme,
    CallOptions,
    Endpoint,
    KneoDecodeError,
    KneoUsageError,
    Operation,
    Parts,
    Request,
    Response,
    RetryPolicy,
    endpoints,
    generate_request_id,
    new_idempotency_key,
    redact_headers,
    validate_idempotency_key,
    validate_request_id,
)
from kneo_proto._http import normalize_headers
from kneo_proto._operation import Route, check_page, encode_path_param, raw_operation
from kneo_proto.models import (
    EnvironmentPolicyRequest,
    HumanResumeRequest,
    RunCreateRequest,
    SpecCompileRequest,
    SpecExplainRequest,
    SpecPolicyReportRequest,
    SpecValidateRequest,
)
from tests.proto.harness import API_KEY, BASE_URL, Reply, Trace, drive, json_reply, make_config
from tests.support.spec import spec_operation_count

AnyEndpoint = Endpoint[Any, Any]
TS = "2024-01-01T00:00:00Z"
RUN = {
    "run_id": "run-1",
    "spec_id": "spec-1",
    "status": "running",
    "environment": "dev",
    "created_at": TS,
    "updated_at": TS,
}
CREATED = {"run_id": "run-1", "status": "queued", "created_at": TS}
TASK = {
    "continuation_id": "cont-1",
    "run_id": "run-1",
    "status": "pending",
    "prompt": "Approve?",
    "created_at": TS,
    "updated_at": TS,
}
POLICY = {
    "environment": "prod",
    "denied_spec_ids": [],
    "require_human_review": True,
    "updated_at": TS,
    "version": 2,
}


def page(sort_by: str, sort_order: str, **items: Any) -> dict[str, Any]:
    fields = {"count": 0, "total": 0, "limit": 100, "offset": 0}
    return {**fields, "sort_by": sort_by, "sort_order": sort_order, **items}


@dataclass(frozen=True)
class Case:
    """One builder called with sample arguments, and exactly what it must send."""

    builder: AnyEndpoint
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    method: str
    path: str
    query: str
    body: bytes | None
    reply: Any
    model_body: Any = None

    @property
    def id(self) -> str:
        return self.builder.name

    def build(self, **extra: Any) -> Operation[Any]:
        return self.builder(*self.args, **self.kwargs, **extra)


CASES: list[Case] = [
    Case(endpoints.healthz, (), {}, "GET", "/v1/healthz", "", None, {"ok": True}),
    Case(endpoints.livez, (), {}, "GET", "/v1/livez", "", None, {"ok": True}),
    Case(endpoints.readyz, (), {}, "GET", "/v1/readyz", "", None, {"ok": False}),
    Case(
        endpoints.create_run,
        ({"spec_id": "spec-1"},),
        {},
        "POST",
        "/v1/runs",
        "",
        b'{"spec_id":"spec-1"}',
        CREATED,
        RunCreateRequest(spec_id="spec-1"),
    ),
    Case(
        endpoints.list_runs,
        (),
        {"status": "failed", "limit": 10, "offset": 20},
        "GET",
        "/v1/runs",
        "status=failed&limit=10&offset=20&sort_by=updated_at&sort_order=desc",
        None,
        page("updated_at", "desc", runs=[RUN]),
    ),
    Case(endpoints.get_run, ("run-1",), {}, "GET", "/v1/runs/run-1", "", None, RUN),
    Case(endpoints.cancel_run, ("run-1",), {}, "POST", "/v1/runs/run-1/cancel", "", None, RUN),
    Case(
        endpoints.continue_run, ("run-1",), {}, "POST", "/v1/runs/run-1/continue", "", None, CREATED
    ),
    Case(
        endpoints.replay_run,
        ("run-1",),
        {},
        "GET",
        "/v1/runs/run-1/replay",
        "",
        None,
        {"run_id": "run-1", "status": "completed", "steps": []},
    ),
    Case(
        endpoints.get_run_trace,
        ("run-1",),
        {"event_type": "tool_call", "sort_order": "desc"},
        "GET",
        "/v1/runs/run-1/trace",
        "event_type=tool_call&limit=100&offset=0&sort_by=timestamp&sort_order=desc",
        None,
        page("timestamp", "desc", run_id="run-1", events=[]),
    ),
    Case(
        endpoints.list_run_checkpoints,
        ("run-1",),
        {},
        "GET",
        "/v1/runs/run-1/checkpoints",
        "limit=100&offset=0&sort_by=sequence&sort_order=asc",
        None,
        page("sequence", "asc", run_id="run-1", checkpoints=[]),
    ),
    Case(
        endpoints.diff_run_checkpoints,
        ("run-1",),
        {"from_sequence": 1, "to_sequence": 3},
        "GET",
        "/v1/runs/run-1/checkpoints/diff",
        "from_sequence=1&to_sequence=3",
        None,
        {"run_id": "run-1", "from_sequence": 1, "to_sequence": 3, "changes": []},
    ),
    Case(
        endpoints.get_run_policy_report,
        ("run-1",),
        {},
        "GET",
        "/v1/runs/run-1/policy-report",
        "",
        None,
        {"rules": [{"rule": "r", "allowed": True}]},
    ),
    Case(
        endpoints.get_run_recovery,
        ("run-1",),
        {},
        "GET",
        "/v1/runs/run-1/recovery",
        "",
        None,
        {"run_id": "run-1", "recoverable": False, "recommended_action": "none"},
    ),
    Case(
        endpoints.list_human_tasks,
        (),
        {"status": "pending"},
        "GET",
        "/v1/human-tasks",
        "status=pending&limit=100&offset=0&sort_by=created_at&sort_order=desc",
        None,
        page("created_at", "desc", tasks=[TASK]),
    ),
    Case(
        endpoints.get_human_task,
        ("cont-1",),
        {},
        "GET",
        "/v1/human-tasks/cont-1",
        "",
        None,
        TASK,
    ),
    Case(
        endpoints.resume_human_task,
        ("cont-1", {"decision": "approve"}),
        {},
        "POST",
        "/v1/human-tasks/cont-1/resume",
        "",
        b'{"decision":"approve"}',
        {
            "continuation_id": "cont-1",
            "run_id": "run-1",
            "status": "resumed",
            "decision": "approve",
        },
        HumanResumeRequest(decision="approve"),
    ),
    Case(
        endpoints.list_audit_events,
        (),
        {"event_type": "run.created", "run_id": "run 1", "principal": "ops@kneo", "limit": 1000},
        "GET",
        "/v1/audit-events",
        "event_type=run.created&run_id=run%201&principal=ops%40kneo&limit=1000&offset=0"
        "&sort_by=timestamp&sort_order=desc",
        None,
        page("timestamp", "desc", events=[]),
    ),
    Case(
        endpoints.list_credentials,
        (),
        {},
        "GET",
        "/v1/security/credentials",
        "",
        None,
        {"credentials": [], "count": 0},
    ),
    Case(
        endpoints.list_environment_policies,
        (),
        {},
        "GET",
        "/v1/policies/environment",
        "",
        None,
        {"policies": [POLICY], "count": 1},
    ),
    Case(
        endpoints.get_environment_policy,
        ("prod",),
        {},
        "GET",
        "/v1/policies/environment/prod",
        "",
        None,
        POLICY,
    ),
    Case(
        endpoints.put_environment_policy,
        ("prod", {"require_human_review": True}),
        {},
        "PUT",
        "/v1/policies/environment/prod",
        "",
        b'{"require_human_review":true}',
        POLICY,
        EnvironmentPolicyRequest(require_human_review=True),
    ),
    Case(
        endpoints.validate_spec,
        ({"spec": "name: x"},),
        {},
        "POST",
        "/v1/specs/validate",
        "",
        b'{"spec":"name: x"}',
        {"valid": True, "diagnostics": []},
        SpecValidateRequest(spec="name: x"),
    ),
    Case(
        endpoints.compile_spec,
        ({"spec": "name: x", "format": "yaml"},),
        {},
        "POST",
        "/v1/specs/compile",
        "",
        b'{"spec":"name: x","format":"yaml"}',
        {"ok": True, "diagnostics": []},
        SpecCompileRequest(spec="name: x", format="yaml"),
    ),
    Case(
        endpoints.explain_spec,
        ({"spec": "name: x"},),
        {},
        "POST",
        "/v1/specs/explain",
        "",
        b'{"spec":"name: x"}',
        {"summary": "s", "steps": [], "diagnostics": []},
        SpecExplainRequest(spec="name: x"),
    ),
    Case(
        endpoints.spec_policy_report,
        ({"spec": "name: x", "environment": "prod"},),
        {},
        "POST",
        "/v1/specs/policy-report",
        "",
        b'{"spec":"name: x","environment":"prod"}',
        {"environment": "prod", "allowed": True, "outcomes": [], "diagnostics": []},
        SpecPolicyReportRequest(spec="name: x", environment="prod"),
    ),
    Case(
        endpoints.run_spec,
        ({"spec": "name: x", "inputs": {"n": 1}},),
        {},
        "POST",
        "/v1/specs/run",
        "",
        b'{"spec":"name: x","inputs":{"n":1}}',
        CREATED,
        RunCreateRequest(spec="name: x", inputs={"n": 1}),
    ),
]
CASE_IDS = [case.id for case in CASES]
POST_CASES = [case for case in CASES if case.method == "POST"]
BODY_CASES = [case for case in CASES if case.body is not None]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_request_tables_are_not_empty_and_cover_every_endpoint() -> None:
    assert len(endpoints.ALL) == spec_operation_count()
    assert endpoints.ALL is ENDPOINTS
    assert sorted(e.name for e in endpoints.ALL) == sorted(CASE_IDS)
    assert len(set(CASE_IDS)) == spec_operation_count()
    assert len(POST_CASES) == 9
    assert len(BODY_CASES) == 8
    for table in (
        PATH_CORPUS,
        REFUSED_PATH_IDS,
        PATH_BUILDERS,
        BAD_KEYS,
        GOOD_KEYS,
        INJECTIONS,
        BAD_HEADER_NAMES,
        REDACT_CASES,
        BAD_LIMITS,
        PAGED_BUILDERS,
        WRONG_BODIES,
        QUERY_CASES,
        RAW_CASES,
        RAW_REFUSALS,
    ):
        assert table


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_builder_gives_exact_method_path_query_and_body(case: Case) -> None:
    op = case.build()
    assert (op.name, op.method, op.path, op.body) == (case.id, case.method, case.path, case.body)
    assert op.target == (case.path + "?" + case.query if case.query else case.path)
    assert "&".join(f"{k}={v}" for k, v in op.query) == case.query
    assert op.template == case.builder.route.template
    if case.method == "POST":
        assert op.idempotency_key is not None
        assert UUID4.fullmatch(op.idempotency_key)
    else:
        assert op.idempotency_key is None
    keyed = "idempotency_key" in inspect.signature(case.builder).parameters
    assert keyed is (case.method == "POST")


def header_counts(request: Request) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in request.headers:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return counts


def check_sent_headers(case: Case, op: Operation[Any], trace: Trace, scheme: AuthScheme) -> None:
    request = trace.requests[0]
    assert all(count == 1 for count in header_counts(request).values()), request.headers
    assert request.header("Accept") == "application/json"
    assert (request.header("User-Agent") or "").startswith("kneo-client/")
    if scheme is AuthScheme.BEARER:
        assert request.header("Authorization") == f"Bearer {API_KEY}"
        assert request.header("X-Kneo-Api-Key") is None
    else:
        assert request.header("X-Kneo-Api-Key") == API_KEY
        assert request.header("Authorization") is None
    assert UUID4.fullmatch(request.header(REQUEST_ID_HEADER) or "")
    assert request.header(REQUEST_ID_HEADER) == trace.finished.request_id
    assert request.header(IDEMPOTENCY_KEY_HEADER) == op.idempotency_key
    assert request.header("X-Kneo-Attempt") == "1"
    if case.body is not None:
        assert request.header("Content-Type") == "application/json"
        assert request.header("Content-Length") == str(len(case.body))
    else:
        assert request.header("Content-Type") is None
        expected_length = "0" if case.method in ("POST", "PUT") else None
        assert request.header("Content-Length") == expected_length


@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_builder_driven_sends_the_sdk_headers_and_decodes_the_reply(
    case: Case, scheme: AuthScheme
) -> None:
    op = case.build()
    trace = drive(op, lambda _: json_reply(200, case.reply), config=make_config(auth_scheme=scheme))
    request = trace.requests[0]
    assert (request.method, request.url) == (case.method, BASE_URL + op.target)
    assert request.target == op.target
    assert request.body == (case.body or b"")
    check_sent_headers(case, op, trace, scheme)
    result = trace.finished.result
    assert isinstance(result, case.builder.route.result_type)
    assert msgspec.to_builtins(result) == case.reply
    assert trace.finished.idempotency_key == op.idempotency_key


@pytest.mark.parametrize("case", BODY_CASES, ids=[c.id for c in BODY_CASES])
def test_builder_accepts_a_dict_or_a_model_body_with_the_same_bytes(case: Case) -> None:
    assert case.model_body is not None
    args = tuple(case.model_body if isinstance(a, dict) else a for a in case.args)
    op = case.builder(*args, **case.kwargs)
    assert op.body == case.body


# builder, sample path args, the dict body that has a field of the wrong type
WRONG_BODIES: list[tuple[AnyEndpoint, tuple[Any, ...], dict[str, Any], str]] = [
    (endpoints.create_run, (), {"spec_id": 5}, "Expected `str`, got `int`"),
    (endpoints.create_run, (), {"spec_id": "s", "inputs": "x"}, "Expected `object`"),
    (endpoints.create_run, (), {"spec_id": "s", "labels": {"a": 1}}, "labels"),
    (endpoints.resume_human_task, ("cont-1",), {"decision": None}, "decision"),
    (endpoints.resume_human_task, ("cont-1",), {"comment": "no decision"}, "missing required"),
    (endpoints.put_environment_policy, ("prod",), {"max_run_seconds": "10"}, "max_run_seconds"),
    (endpoints.put_environment_policy, ("prod",), {"require_human_review": "true"}, "bool"),
    (endpoints.put_environment_policy, ("prod",), {"require_human_review": 1}, "bool"),
    (endpoints.validate_spec, (), {"spec": ["not", "text"]}, "spec"),
    (endpoints.spec_policy_report, (), {"spec": "x", "environment": 3}, "environment"),
]


@pytest.mark.parametrize(("builder", "args", "body", "fragment"), WRONG_BODIES)
def test_builder_refuses_a_dict_body_with_a_wrongly_typed_field(
    builder: AnyEndpoint, args: tuple[Any, ...], body: dict[str, Any], fragment: str
) -> None:
    """The dict is sent as given, so a value that would only convert is refused too."""
    with pytest.raises(KneoUsageError, match=re.escape(fragment)):
        builder(*args, body)


def test_builder_refuses_a_body_of_another_type() -> None:
    with pytest.raises(KneoUsageError, match="body must be a RunCreateRequest or a dict, not list"):
        endpoints.create_run(["spec-1"])  # type: ignore[arg-type]
    with pytest.raises(KneoUsageError, match="not SpecValidateRequest"):
        endpoints.create_run(SpecValidateRequest(spec="x"))  # type: ignore[arg-type]


def test_builder_refuses_a_body_that_cannot_be_encoded() -> None:
    with pytest.raises(KneoUsageError, match="body cannot be encoded as JSON"):
        endpoints.create_run({"spec_id": "s", "inputs": {"not_json": object()}})


def test_route_without_a_body_type_refuses_a_body() -> None:
    route = Route("GET", "/v1/things", dict)
    with pytest.raises(KneoUsageError, match="GET /v1/things takes no body"):
        route.bind("get_things", Parts(body={"a": 1}))


def test_builder_refuses_unknown_dict_fields() -> None:
    """Strict on request: a key the model lacks is a typo far more often than a field the
    platform added first (``tests/proto/test_request_checks.py`` has the full table)."""
    with pytest.raises(KneoUsageError, match="unknown field 'future_field'"):
        endpoints.create_run({"spec_id": "s", "future_field": [1]})  # type: ignore[arg-type]


# -- idempotency keys: POST only, UUID4 when automatic, the caller's byte for byte ----------

GOOD_KEYS = [
    "k",
    "user-key-0001",
    "Key_~!#$%&'*+-.^`|0123456789",
    "with inner space",
    "%0d%0a",
    "k" * MAX_KEY_LENGTH,
]
BAD_KEYS: list[tuple[Any, str]] = [
    ("", "non-empty string"),
    ("k" * (MAX_KEY_LENGTH + 1), "257 characters long; the platform allows 256"),
    ("a\r\nb", "control or non-ASCII"),
    ("a\nb", "control or non-ASCII"),
    ("a\rb", "control or non-ASCII"),
    ("a\x00b", "control or non-ASCII"),
    ("clé", "control or non-ASCII"),
    ("a\u2028b", "control or non-ASCII"),
    (" lead-key-xyz", "leading or trailing whitespace"),
    ("trail-key-xyz\t", "leading or trailing whitespace"),
    (5, "non-empty string"),
]


@pytest.mark.parametrize("case", POST_CASES, ids=[c.id for c in POST_CASES])
def test_post_builders_get_a_fresh_uuid4_key_each_call(case: Case) -> None:
    keys = {case.build().idempotency_key for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key is not None
        parsed = uuid.UUID(key)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, key)


@pytest.mark.parametrize("key", GOOD_KEYS, ids=lambda k: repr(k)[:20])
@pytest.mark.parametrize("case", POST_CASES, ids=[c.id for c in POST_CASES])
def test_post_builders_send_the_callers_key_byte_for_byte(case: Case, key: str) -> None:
    op = case.build(idempotency_key=key)
    assert op.idempotency_key == key
    trace = drive(op, lambda _: json_reply(200, case.reply))
    assert trace.requests[0].header(IDEMPOTENCY_KEY_HEADER) == key
    assert trace.finished.idempotency_key == key


@pytest.mark.parametrize(("key", "fragment"), BAD_KEYS, ids=lambda k: repr(k)[:20])
@pytest.mark.parametrize("case", POST_CASES, ids=[c.id for c in POST_CASES])
def test_post_builders_refuse_invalid_keys_with_a_value_error(
    case: Case, key: Any, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)) as caught:
        case.build(idempotency_key=key)
    assert isinstance(caught.value, KneoUsageError)
    if isinstance(key, str) and len(key) > 3:
        assert key not in str(caught.value)


def test_idempotency_key_helpers() -> None:
    keys = {new_idempotency_key() for _ in range(10_000)}
    assert len(keys) == 10_000
    assert all(UUID4.fullmatch(key) for key in keys)
    validate_idempotency_key("k" * MAX_KEY_LENGTH)
    assert (IDEMPOTENCY_KEY_HEADER, MAX_KEY_LENGTH) == ("Idempotency-Key", 256)


# -- path parameters: exactly one segment (T36) ---------------------------------------------

PATH_CORPUS = [
    "run-1",
    "a/b",
    "a?b",
    "a#b",
    "%2F",
    "a%00",
    "../admin",
    "...",
    "%252e%252e",
    " ",
    "a b&c=d;e",
    "é",
    "\u202eRTL \u05e9\u05dc\u05d5\u05dd",
    "😀",
    "x" * 8192,
]
REFUSED_PATH_IDS: list[tuple[Any, str]] = [
    (".", "must not be empty, '.' or '..'"),
    ("..", "must not be empty, '.' or '..'"),
    ("", "must not be empty, '.' or '..'"),
    ("%2e", "must not be empty, '.' or '..'"),
    ("%2e%2e", "must not be empty, '.' or '..'"),
    ("%2E%2E", "must not be empty, '.' or '..'"),
    (".%2e", "must not be empty, '.' or '..'"),
    ("\ud800", "not valid Unicode text"),
    (None, "must be a string, not NoneType"),
    (5, "must be a string, not int"),
    (b"run-1", "must be a string, not bytes"),
]
# builder, (prefix, suffix) of its path, the arguments after the id
PATH_BUILDERS: list[tuple[AnyEndpoint, str, str, tuple[Any, ...]]] = [
    (endpoints.get_run, "/v1/runs/", "", ()),
    (endpoints.cancel_run, "/v1/runs/", "/cancel", ()),
    (endpoints.get_run_trace, "/v1/runs/", "/trace", ()),
    (endpoints.diff_run_checkpoints, "/v1/runs/", "/checkpoints/diff", ()),
    (endpoints.get_human_task, "/v1/human-tasks/", "", ()),
    (endpoints.resume_human_task, "/v1/human-tasks/", "/resume", ({"decision": "approve"},)),
    (endpoints.get_environment_policy, "/v1/policies/environment/", "", ()),
    (endpoints.put_environment_policy, "/v1/policies/environment/", "", ({},)),
]
SEGMENT = re.compile(r"[A-Za-z0-9_.~%-]+")


def assert_one_segment(path: str, prefix: str, suffix: str, value: str) -> None:
    assert path.startswith(prefix)
    assert path.endswith(suffix)
    segment = path[len(prefix) : len(path) - len(suffix)]
    assert SEGMENT.fullmatch(segment), segment[:80]
    assert unquote(segment, errors="strict") == value


@pytest.mark.parametrize("value", PATH_CORPUS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize(("builder", "prefix", "suffix", "rest"), PATH_BUILDERS)
def test_path_parameter_becomes_exactly_one_segment(
    builder: AnyEndpoint, prefix: str, suffix: str, rest: tuple[Any, ...], value: str
) -> None:
    op = builder(value, *rest)
    assert_one_segment(op.path, prefix, suffix, value)


@pytest.mark.parametrize("value", ["a/b", "%2F", "../admin", "é"])
def test_path_parameter_reaches_the_wire_as_one_segment(value: str) -> None:
    trace = drive(endpoints.get_run(value), lambda _: json_reply(200, RUN))
    assert_one_segment(trace.requests[0].target, "/v1/runs/", "", value)


@pytest.mark.parametrize(("value", "fragment"), REFUSED_PATH_IDS)
@pytest.mark.parametrize(("builder", "prefix", "suffix", "rest"), PATH_BUILDERS)
def test_path_parameter_refuses_dot_segments_empty_and_non_strings(
    builder: AnyEndpoint,
    prefix: str,
    suffix: str,
    rest: tuple[Any, ...],
    value: Any,
    fragment: str,
) -> None:
    with pytest.raises(KneoUsageError, match=re.escape(fragment)):
        builder(value, *rest)


@given(st.text(max_size=40))
@settings(max_examples=500, derandomize=True)
def test_path_parameter_is_refused_or_round_trips_as_one_segment(value: str) -> None:
    try:
        segment = encode_path_param("run_id", value)
    except KneoUsageError:
        assert unquote(value) in ("", ".", "..") or not _encodable(value)
        return
    assert SEGMENT.fullmatch(segment)
    assert unquote(segment, errors="strict") == value
    assert endpoints.get_run(value).path == "/v1/runs/" + segment


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- query strings -------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


QUERY_CASES: list[tuple[dict[str, object], str]] = [
    ({}, ""),
    ({"a": None}, ""),
    ({"flag": True, "off": False}, "flag=true&off=false"),
    ({"colour": Colour.RED}, "colour=red"),
    ({"n": 3, "x": 1.5}, "n=3&x=1.5"),
    ({"tag": ["a", "b", None]}, "tag=a&tag=b"),
    ({"s": "a b&c=d/é"}, "s=a%20b%26c%3Dd%2F%C3%A9"),
    ({"a b": "%0d%0a"}, "a%20b=%250d%250a"),
    ({"crlf": "x\r\nX-Injected: 1"}, "crlf=x%0D%0AX-Injected%3A%201"),
]


@pytest.mark.parametrize(("query", "expected"), QUERY_CASES)
def test_query_values_are_percent_encoded(query: dict[str, object], expected: str) -> None:
    op = Route("GET", "/v1/things", dict).bind("list_things", Parts(query=query))
    assert op.target == ("/v1/things?" + expected if expected else "/v1/things")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (object(), "unsupported type object"),
        (b"bytes", "unsupported type bytes"),
        ("\udc80", "not valid Unicode text"),
    ],
)
def test_query_values_of_other_types_are_refused(value: object, fragment: str) -> None:
    with pytest.raises(KneoUsageError, match=fragment):
        Route("GET", "/v1/things", dict).bind("list_things", Parts(query={"q": value}))


PAGED_BUILDERS: list[tuple[AnyEndpoint, tuple[Any, ...]]] = [
    (endpoints.list_runs, ()),
    (endpoints.get_run_trace, ("run-1",)),
    (endpoints.list_run_checkpoints, ("run-1",)),
    (endpoints.list_human_tasks, ()),
    (endpoints.list_audit_events, ()),
]
BAD_LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"limit": 0}, "limit must be an integer from 1 to 1000, not 0"),
    ({"limit": 1001}, "not 1001"),
    ({"limit": -1}, "not -1"),
    ({"limit": True}, "not True"),
    ({"limit": 1.5}, "not 1.5"),
    ({"limit": "10"}, "not '10'"),
    ({"limit": None}, "not None"),
    ({"offset": -1}, "offset must be an integer >= 0, not -1"),
    ({"offset": False}, "not False"),
    ({"offset": 2.0}, "not 2.0"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD_LIMITS)
@pytest.mark.parametrize(("builder", "args"), PAGED_BUILDERS)
def test_list_builders_refuse_limit_outside_1_to_1000_before_sending(
    builder: AnyEndpoint, args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(KneoUsageError, match=re.escape(fragment)):
        builder(*args, **kwargs)


@pytest.mark.parametrize(("builder", "args"), PAGED_BUILDERS)
@pytest.mark.parametrize(("limit", "offset"), [(1, 0), (1000, 0), (100, 10**12)])
def test_list_builders_accept_the_bounds(
    builder: AnyEndpoint, args: tuple[Any, ...], limit: int, offset: int
) -> None:
    op = builder(*args, limit=limit, offset=offset)
    assert (("limit", str(limit)) in op.query, ("offset", str(offset)) in op.query) == (True, True)
    assert builder.route.items_field is not None
    check_page(limit, offset)


# -- extra headers (T35): no injection, and never over the SDK's own ------------------------

INJECTIONS = [
    "\r\n",
    "\n",
    "\r",
    "\x00",
    "\x0b",
    "\x0c",
    "\x7f",
    "\u2028",
    "\u0085",
    "\r\nX-Injected: 1",
    "é",
]
BAD_HEADER_NAMES = ["X Bad", "X-Bad\r\n", "", "X-Bad:", "é", "X-Bad\x00"]


@pytest.mark.parametrize("payload", INJECTIONS, ids=repr)
def test_extra_header_values_with_control_characters_are_refused(payload: str) -> None:
    value = "secret-value-" + payload + "-tail"
    with pytest.raises(KneoUsageError, match="header X-Note holds a control") as caught:
        CallOptions(headers={"X-Note": value})
    assert value not in str(caught.value)
    assert "secret-value" not in str(caught.value)


@pytest.mark.parametrize("payload", INJECTIONS, ids=repr)
def test_request_id_with_control_characters_is_refused_before_sending(payload: str) -> None:
    sent: list[Request] = []

    def server(request: Request) -> Reply:
        sent.append(request)
        return json_reply(200, RUN)

    options = CallOptions(request_id="rid-" + payload)
    with pytest.raises(KneoUsageError, match="header X-Request-ID"):
        drive(endpoints.get_run("run-1"), server, options=options)
    assert sent == []


@pytest.mark.parametrize("name", BAD_HEADER_NAMES, ids=repr)
def test_extra_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(KneoUsageError, match="invalid header name"):
        CallOptions(headers={name: "v"})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(5, "must be a string, not int"), (" padded", "leading or trailing"), ("x ", "trailing")],
)
def test_extra_header_values_must_be_trimmed_strings(value: Any, fragment: str) -> None:
    with pytest.raises(KneoUsageError, match=fragment):
        CallOptions(headers={"X-Note": value})


def test_extra_headers_that_only_look_like_injection_stay_inert() -> None:
    options = CallOptions(headers={"X-Note": "%0d%0aX-Injected: 1", "X-Empty": ""})
    trace = drive(endpoints.get_run("run-1"), lambda _: json_reply(200, RUN), options=options)
    request = trace.requests[0]
    assert request.header("X-Note") == "%0d%0aX-Injected: 1"
    assert request.header("X-Empty") == ""
    assert request.header("X-Injected") is None


def test_request_id_override_is_sent_on_the_wire() -> None:
    options = CallOptions(request_id="trace-abc-123")
    trace = drive(endpoints.get_run("run-1"), lambda _: json_reply(200, RUN), options=options)
    assert trace.requests[0].header(REQUEST_ID_HEADER) == "trace-abc-123"
    assert trace.finished.request_id == "trace-abc-123"
    with pytest.raises(KneoUsageError, match="must not be empty"):
        validate_request_id("")
    assert UUID4.fullmatch(generate_request_id())


OWNED_OVERRIDES = {
    "Authorization": "Bearer evil-token",
    "x-kneo-api-key": "evil-api-key",
    "IDEMPOTENCY-KEY": "evil-idempotency-key",
    "X-Request-Id": "evil-request-id",
    "accept": "text/evil",
    "User-Agent": "evil-agent",
}


@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_extra_headers_never_override_auth_key_or_request_id(scheme: AuthScheme) -> None:
    options = CallOptions(headers={**OWNED_OVERRIDES, "X-Trace": "kept"})
    op = endpoints.create_run({"spec_id": "s"}, idempotency_key="caller-key")
    trace = drive(
        op,
        lambda _: json_reply(200, CREATED),
        config=make_config(auth_scheme=scheme),
        options=options,
    )
    request = trace.requests[0]
    assert not [value for _, value in request.headers if "evil" in value]
    assert request.header("X-Trace") == "kept"
    assert request.header(IDEMPOTENCY_KEY_HEADER) == "caller-key"
    assert request.header(REQUEST_ID_HEADER) == trace.finished.request_id
    assert request.header("Accept") == "application/json"
    if scheme is AuthScheme.KNEO_API_KEY:
        assert request.header("Authorization") is None
        assert request.header("X-Kneo-Api-Key") == API_KEY
    else:
        assert request.header("Authorization") == f"Bearer {API_KEY}"
        assert request.header("X-Kneo-Api-Key") is None
    for name in OWNED_OVERRIDES:
        assert header_counts(request).get(name.lower(), 0) <= 1


def test_extra_headers_never_duplicate_a_header_the_sdk_sets() -> None:
    options = CallOptions(
        headers={"Content-Length": "999", "Content-Type": "text/plain", "X-Kneo-Attempt": "7"}
    )
    trace = drive(
        endpoints.create_run({"spec_id": "s"}),
        lambda _: json_reply(200, CREATED),
        options=options,
    )
    counts = header_counts(trace.requests[0])
    assert (counts["content-length"], counts["content-type"], counts["x-kneo-attempt"]) == (1, 1, 1)


# -- redaction and the plain values that cross to drivers -----------------------------------

REDACT_CASES: list[tuple[str, bool]] = [
    ("Authorization", True),
    ("authorization", True),
    ("AUTHORIZATION", True),
    ("X-Kneo-Api-Key", True),
    ("x-kneo-api-key", True),
    ("Cookie", True),
    ("Set-Cookie", True),
    ("Proxy-Authorization", True),
    ("X-Upstream-Authorization", True),
    ("X-Cookie-Jar", True),
    ("X-Request-ID", False),
    ("Idempotency-Key", False),
    ("Accept", False),
    ("User-Agent", False),
    ("Content-Type", False),
]


@pytest.mark.parametrize(("name", "sensitive"), REDACT_CASES)
def test_redact_headers_masks_the_contracts_sensitive_names(name: str, sensitive: bool) -> None:
    original = {name: "value-123", "X-Other": "plain"}
    redacted = redact_headers(original)
    assert redacted == {name: REDACTED if sensitive else "value-123", "X-Other": "plain"}
    assert original[name] == "value-123"
    assert redacted is not original
    assert REDACTED == "<redacted>"


def test_redact_headers_of_nothing_is_empty() -> None:
    assert redact_headers({}) == {}


def test_request_and_response_reprs_redact_credentials_but_keep_repeats() -> None:
    request = Request(
        "GET",
        "https://kneo.test",
        (("Authorization", f"Bearer {API_KEY}"), ("X-A", "1"), ("x-a", "2")),
    )
    shown = repr(request)
    assert API_KEY not in shown
    assert "('X-A', '1'), ('x-a', '2')" in shown
    assert "body=<0 bytes>" in shown
    assert request.target == "/"
    response = Response(200, (("Set-Cookie", "session=s3cret"), ("X-B", "b")), b"{}")
    assert "s3cret" not in repr(response)
    assert repr(response) == (
        "Response(status=200, headers=(('Set-Cookie', '<redacted>'), ('X-B', 'b')), body=<2 bytes>)"
    )
    assert response.header("x-b") == "b"
    assert response.header("missing") is None


def test_normalize_headers_decodes_bytes_as_latin_1() -> None:
    pairs: list[tuple[bytes | str, bytes | str]] = [
        (b"X-Bytes", b"caf\xe9"),
        ("X-Str", "plain"),
        (b"X-Mixed", "v"),
    ]
    assert normalize_headers(pairs) == (("X-Bytes", "café"), ("X-Str", "plain"), ("X-Mixed", "v"))


# -- decoding and the endpoint objects themselves -------------------------------------------


@pytest.mark.parametrize(
    ("builder", "body"),
    [
        (endpoints.get_run, b'{"run_id": 5}'),
        (endpoints.get_run, b"not json"),
        (endpoints.get_run_policy_report, b"[1, 2]"),
        (endpoints.healthz, b"[" * 100_000),
        (endpoints.list_runs, b"{}"),
    ],
)
def test_a_2xx_body_that_does_not_match_its_model_is_a_decode_error(
    builder: AnyEndpoint, body: bytes
) -> None:
    with pytest.raises(KneoDecodeError) as caught:
        builder.route.decode(body)
    message = str(caught.value)
    assert message.startswith(f"GET {builder.route.template}: response body does not match ")
    assert len(message) <= 1024


@pytest.mark.parametrize("builder", endpoints.ALL, ids=lambda e: e.name)
def test_endpoint_objects_keep_the_builders_name_docstring_and_repr(builder: AnyEndpoint) -> None:
    route = builder.route
    assert repr(builder) == f"<Endpoint {builder.name}: {route.method} {route.template}>"
    assert builder.__doc__ is not None
    assert f"``{route.method} " in " ".join(builder.__doc__.split())
    wrapped: Callable[..., Parts] = getattr(builder, "__wrapped__")  # noqa: B009
    assert wrapped.__name__ == builder.name
    assert inspect.signature(builder) == inspect.signature(wrapped)
    assert getattr(endpoints, builder.name) is builder


def test_parts_defaults_are_empty() -> None:
    parts = Parts()
    assert (dict(parts.path), dict(parts.query), parts.body, parts.idempotency_key) == (
        {},
        {},
        None,
        None,
    )


# -- CallOptions ---------------------------------------------------------------------------


@pytest.mark.parametrize("field_name", ["timeout", "deadline"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, -math.inf])
def test_call_options_refuse_negative_or_non_finite_seconds(field_name: str, value: float) -> None:
    kwargs: dict[str, Any] = {field_name: value}
    with pytest.raises(KneoUsageError, match=f"{field_name} must be a finite number"):
        CallOptions(**kwargs)


def test_call_options_merged_lets_the_later_options_win() -> None:
    policy_a, policy_b = RetryPolicy(max_attempts=2), RetryPolicy(max_attempts=5)
    base = CallOptions(
        timeout=1.0,
        deadline=10.0,
        retry_policy=policy_a,
        headers={"X-A": "a", "X-B": "b"},
        request_id="rid-a",
    )
    assert base.merged(CallOptions()) == base
    later = CallOptions(
        timeout=0.5, deadline=0.0, retry_policy=policy_b, headers={"X-B": "B"}, request_id="rid-b"
    )
    assert base.merged(later) == CallOptions(
        timeout=0.5,
        deadline=0.0,
        retry_policy=policy_b,
        headers={"X-A": "a", "X-B": "B"},
        request_id="rid-b",
    )
    assert CallOptions().merged(CallOptions()).headers is None


# -- raw operations: endpoints kneo-client does not wrap yet --------------------------------

RAW_CASES: list[tuple[str, str, dict[str, Any], str, str, bytes | None]] = [
    ("get", "/v1/new", {}, "GET", "/v1/new", None),
    ("GET", "/v1/new", {"params": {"q": "a b", "n": None}}, "GET", "/v1/new?q=a%20b", None),
    ("put", "/v1/new/x", {"json": {"a": [1]}}, "PUT", "/v1/new/x", b'{"a":[1]}'),
    ("POST", "/v1/new", {"json": {"a": 1}}, "POST", "/v1/new", b'{"a":1}'),
    ("delete", "/v1/new/%2F~x", {"idempotency_key": "ignored"}, "DELETE", "/v1/new/%2F~x", None),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "verb", "target", "body"), RAW_CASES)
def test_raw_operation_builds_a_plain_request(
    method: str, path: str, kwargs: dict[str, Any], verb: str, target: str, body: bytes | None
) -> None:
    op = raw_operation(method, path, **kwargs)
    assert (op.method, op.target, op.body, op.name) == (verb, target, body, "request")
    if verb == "POST":
        assert UUID4.fullmatch(op.idempotency_key or "")
    else:
        assert op.idempotency_key is None
    assert op.decode(b"raw \xff bytes") == b"raw \xff bytes"


def test_raw_operation_posts_with_the_callers_key() -> None:
    assert raw_operation("POST", "/v1/new", idempotency_key="k-1").idempotency_key == "k-1"
    with pytest.raises(KneoUsageError, match="control or non-ASCII"):
        raw_operation("POST", "/v1/new", idempotency_key="k\r\n1")


RAW_REFUSALS: list[tuple[str, str, dict[str, Any], str]] = [
    ("GE T", "/v1/x", {}, "invalid HTTP method"),
    ("", "/v1/x", {}, "invalid HTTP method"),
    ("GET\r\n", "/v1/x", {}, "invalid HTTP method"),
    ("GET", "v1/x", {}, "path must be relative"),
    ("GET", "https://elsewhere.invalid/v1/x", {}, "path must be relative"),
    ("GET", "//elsewhere.invalid/v1/x", {}, "path must be relative"),
    ("GET", "/v1/x?q=1", {}, "path must be relative"),
    ("GET", "/v1/x#top", {}, "path must be relative"),
    ("GET", "/v1/a b", {}, "path must be relative"),
    ("GET", "/v1/x\r\nX-Injected: 1", {}, "path must be relative"),
    ("GET", "/v1/é", {}, "path must be relative"),
    ("POST", "/v1/x", {"json": {"a": object()}}, "json cannot be encoded"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "fragment"), RAW_REFUSALS)
def test_raw_operation_refuses_what_could_leave_the_base_url(
    method: str, path: str, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(KneoUsageError, match=fragment):
        raw_operation(method, path, **kwargs)


def test_uuid4_text_is_a_version_4_rfc_uuid_and_never_repeats() -> None:
    import uuid

    from kneo_proto._uuid4 import uuid4_text

    seen = {uuid4_text() for _ in range(20_000)}
    assert len(seen) == 20_000
    for text in list(seen)[:2_000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
