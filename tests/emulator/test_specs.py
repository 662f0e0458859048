"""The spec format: its parsers (checked against PyYAML and json as independent peers),
its diagnostics with line and column, and the spec endpoints that use them."""

from __future__ import annotations

import json

import pytest
import yaml

from kneo_client.testing._agent_specs import analyze
from kneo_client.testing._samples import SAMPLE_SPECS
from kneo_client.testing._spec_json import parse_json
from kneo_client.testing._spec_nodes import SpecSyntaxError, plain
from kneo_client.testing._spec_yaml import parse_yaml
from kneo_proto.models import (
    Diagnostic,
    RunCreateResponse,
    RunStatusResponse,
    SpecCompileResponse,
    SpecExplainResponse,
    SpecPolicyReportResponse,
    SpecValidateResponse,
)
from tests.emulator.harness import Script, given

YAML_DOCUMENTS = [
    *SAMPLE_SPECS.values(),
    "a: 1\nb: -2.5\nc: true\nd: null\ne: ~\nf: 'it''s'\ng: \"tab\\there\"\nh: plain text\n",
    "list:\n- 1\n- two\n- - nested\n  - seq\nmap:\n  deep:\n    deeper: [1, 'b', c]\n",
    "---\n# comment\nkey: value # trailing\nurl: http://x.test/a#b\nempty: {}\nnone: []\n",
    "text: |\n  line one\n  # not a comment\n\n  line three\nfolded: >-\n  a\n  b\nafter: 1\n",
    "steps:\n  - name: a\n    output:\n      k: v\n  -\n    name: b\n  - c\n",
    "\"quoted key\": 1\n'single': 2\n",
]


@pytest.mark.parametrize("text", YAML_DOCUMENTS)
def test_yaml_subset_reads_as_pyyaml_does(text: str) -> None:
    assert plain(parse_yaml(text)) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, -3e2, true, null, "x\\u00e9"], "b": {}}', "[]", '"s"', " 0 "],
)
def test_json_parser_reads_as_json_does(text: str) -> None:
    assert plain(parse_json(text)) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("a: 1\nb: c: d\n", 2, 4, "quote it"),
        ("a:\n\tb: 1\n", 2, 1, "tabs"),
        ("a: 1\na: 2\n", 2, 1, "duplicate key"),
        ("a:\n    b: 1\n  c: 2\n", 3, 3, "indentation"),
        ("a: &anchor 1\n", 1, 4, "anchors"),
        ("a: {b: 1}\n", 1, 4, "flow mappings"),
        ("a: [1, [2]]\n", 1, 8, "nested flow"),
        ("a: 1\n---\nb: 2\n", 2, 1, "multiple YAML documents"),
        ("a: 'open\n", 1, 4, "unterminated"),
    ],
)
def test_yaml_subset_refuses_what_it_does_not_support_with_a_position(
    text: str, line: int, column: int, words: str
) -> None:
    with pytest.raises(SpecSyntaxError) as caught:
        parse_yaml(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"a": 1,}', 1, 9),
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3),
        ('{"a": 1, "a": 2}', 1, 10),
        ("[1, 2", 1, 6),
    ],
)
def test_json_parser_locates_syntax_errors(text: str, line: int, column: int) -> None:
    with pytest.raises(SpecSyntaxError) as caught:
        parse_json(text)
    assert (caught.value.line, caught.value.column) == (line, column)


def codes(diagnostics: list[Diagnostic]) -> list[tuple[str, str, object, object]]:
    return [(given(d.severity), str(d.code), d.line, d.column) for d in diagnostics]


BROKEN = """\
name: Bad Name
colour: blue
steps:
  - name: fetch
    kind: tool
  - name: think
    kind: thinking
  - name: fetch
    kind: model
    seconds: -1
  - name: stop
    kind: fail
  - name: after
    kind: model
"""


def test_spec_diagnostics_point_at_each_problem() -> None:
    analysis = analyze(BROKEN)
    assert analysis.spec is None
    assert codes(analysis.diagnostics) == [
        ("warning", "unknown_field", 2, 1),
        ("error", "invalid_name", 1, 7),
        ("error", "missing_field", 4, 5),
        ("error", "unknown_kind", 7, 11),
        ("error", "out_of_range", 10, 14),
        ("warning", "unreachable_step", 13, 5),
    ]


def test_spec_diagnostics_for_json_point_into_the_json_text() -> None:
    text = '{\n  "name": "ok",\n  "steps": [\n    {"name": "a", "kind": 7}\n  ]\n}'
    assert codes(analyze(text).diagnostics) == [("error", "wrong_type", 4, 27)]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "wrong_type"),
        ("- a\n- b\n", "wrong_type"),
        ("name: x\n", "missing_field"),
        ("name: x\nsteps: []\n", "empty_steps"),
        (
            "name: x\nsteps:\n  - name: a\n    kind: model\n  - name: a\n    kind: model\n",
            "duplicate_step",
        ),
        ("name: x\nsteps: [\n", "syntax_error"),
    ],
)
def test_spec_errors_have_codes(text: str, code: str) -> None:
    analysis = analyze(text)
    assert analysis.spec is None
    assert code in [d.code for d in analysis.diagnostics]


def test_spec_format_is_detected_or_taken_as_given() -> None:
    json_text = '{"name": "j", "steps": [{"name": "a", "kind": "model"}]}'
    assert analyze(json_text).spec is not None
    flow = analyze(json_text, "yaml").diagnostics  # YAML flow mappings are outside the subset
    assert [(d.code, d.line, d.column) for d in flow] == [("syntax_error", 1, 1)]
    assert analyze("name: y\n", "json").diagnostics[0].code == "syntax_error"
    assert analyze("name: y\n", "toml").diagnostics[0].code == "unknown_format"


# -- endpoints ---------------------------------------------------------------------------

GOOD = """\
name: triage-lite
description: Look up and answer.
steps:
  - name: lookup
    kind: tool
    tool: crm.lookup
    seconds: 3
  - name: answer
    kind: model
    model: large
    prompt: Answer the customer.
    output:
      reply: Thanks for writing in.
"""


def test_validate_reports_a_valid_spec_and_an_invalid_one() -> None:
    script = Script()
    valid = script.ok("POST", "/v1/specs/validate", {"spec": GOOD}, model=SpecValidateResponse)
    assert (valid.valid, valid.diagnostics) == (True, [])
    invalid = script.ok("POST", "/v1/specs/validate", {"spec": BROKEN}, model=SpecValidateResponse)
    assert not invalid.valid
    assert all(
        isinstance(d.line, int) and isinstance(d.column, int) for d in given(invalid.diagnostics)
    )


def test_validate_with_an_environment_adds_its_policy_verdicts() -> None:
    script = Script()
    body = {"spec": SAMPLE_SPECS["my-spec"], "environment": "prod"}
    result = script.ok("POST", "/v1/specs/validate", body, model=SpecValidateResponse)
    assert not result.valid
    assert [(d.code, d.line) for d in given(result.diagnostics)] == [
        ("policy_denied", 1),
        ("policy_denied", 1),
        ("tool_not_allowed", 7),
    ]


def test_compiled_spec_runs_by_its_spec_id() -> None:
    script = Script()
    compiled = script.ok("POST", "/v1/specs/compile", {"spec": GOOD}, model=SpecCompileResponse)
    assert compiled.ok
    assert compiled.spec_id == "triage-lite"
    assert [s["seconds"] for s in given(compiled.compiled)["steps"]] == [3, 1.0]
    run = script.ok("POST", "/v1/runs", {"spec_id": "triage-lite"}, model=RunCreateResponse)
    script.advance(60)
    done = script.ok("GET", f"/v1/runs/{run.run_id}", model=RunStatusResponse)
    assert given(done.outputs)["answer"] == {"reply": "Thanks for writing in."}


def test_compile_of_a_broken_spec_registers_nothing() -> None:
    script = Script()
    result = script.ok("POST", "/v1/specs/compile", {"spec": BROKEN}, model=SpecCompileResponse)
    assert not result.ok
    assert result.spec_id is result.compiled  # both UNSET
    body = {"spec_id": "Bad Name"}
    script.fails("POST", "/v1/runs", body, status=422, code="validation_error")


def test_explain_summarises_each_step() -> None:
    script = Script()
    body = {"spec": SAMPLE_SPECS["support-triage"], "environment": "prod"}
    explained = script.ok("POST", "/v1/specs/explain", body, model=SpecExplainResponse)
    assert explained.summary.startswith("support-triage: Look up the customer")
    assert "4 steps (2 tool, 1 model, 1 human review)" in explained.summary
    assert "policy review" in explained.summary
    assert [(s.name, s.kind) for s in given(explained.steps)][2] == (
        "approve-reply",
        "human_review",
    )
    assert given(explained.steps)[0].description == "Calls the tool crm.lookup."
    broken = script.ok("POST", "/v1/specs/explain", {"spec": BROKEN}, model=SpecExplainResponse)
    assert (broken.steps, len(given(broken.diagnostics))) == ([], 6)


@pytest.mark.parametrize(
    ("environment", "allowed", "refused"),
    [(None, True, []), ("prod", False, ["allowed_spec_ids", "allowed_tools"]), ("moon", False, [])],
)
def test_spec_policy_report_previews_every_rule(
    environment: str | None, allowed: bool, refused: list[str]
) -> None:
    script = Script()
    body = {"spec": SAMPLE_SPECS["my-spec"]}
    if environment is not None:
        body["environment"] = environment
    report = script.ok("POST", "/v1/specs/policy-report", body, model=SpecPolicyReportResponse)
    assert report.environment == (environment or "dev")
    assert report.allowed is allowed
    assert [o.rule for o in given(report.outcomes) if not o.allowed] == refused


def test_spec_run_starts_an_ad_hoc_run_of_inline_text() -> None:
    script = Script()
    run = script.ok(
        "POST", "/v1/specs/run", {"spec": GOOD, "inputs": {"ticket": 7}}, model=RunCreateResponse
    )
    assert run.spec_id == "triage-lite.adhoc-000001"
    script.advance(60)
    assert script.ok("GET", f"/v1/runs/{run.run_id}", model=RunStatusResponse).status == "completed"
    script.fails(
        "POST", "/v1/runs", {"spec_id": "triage-lite"}, status=422, code="validation_error"
    )


def test_spec_run_refuses_a_broken_spec_with_its_diagnostics() -> None:
    script = Script()
    error = script.fails(
        "POST", "/v1/specs/run", {"spec": BROKEN}, status=422, code="validation_error"
    )
    assert [d["code"] for d in given(error.details)["diagnostics"]][:2] == [
        "unknown_field",
        "invalid_name",
    ]
    assert all({"line", "column"} <= set(d) for d in given(error.details)["diagnostics"])


def test_create_run_needs_a_spec_id_and_spec_run_needs_spec_text() -> None:
    script = Script()
    script.fails("POST", "/v1/runs", {"spec": GOOD}, status=422, code="validation_error")
    script.fails(
        "POST", "/v1/specs/run", {"spec_id": "my-spec"}, status=422, code="validation_error"
    )
    script.fails("POST", "/v1/runs", raw_body=b"", status=400, code="validation_error")
    script.fails("POST", "/v1/runs", {"spec_id": 7}, status=422, code="validation_error")
