"""Strict on request: the caller's mistakes are refused before anything is built to send.

Unknown dict keys (at the top and nested, with the closest field suggested), mistyped model
instances, sort fields and orders outside the spec's enums, and a lone string where a
collection of statuses is meant all raise ``KneoUsageError``. Open values (statuses, decisions)
are typed as ``Literal`` but still sent as given. The ``Literal`` and ``TypedDict`` types are
checked against the spec and the models here; ``tests/typecheck`` shows mypy using them.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from kneo_proto import KneoUsageError, RunPoll, endpoints, models
from kneo_proto._operation import Endpoint
from kneo_proto._request_check import check_choice, check_collection, encode_body
from kneo_proto.models import (
    UNSET,
    EnvironmentPolicyRequest,
    HumanResumeRequest,
    KneoModel,
    RunCreateRequest,
    SpecPolicyReportRequest,
    SpecValidateRequest,
    UnsetType,
)
from tests.proto.harness import FakeClock
from tests.proto.test_endpoints_match_spec import DECLARED, SPEC_OPS, query_parameters

AnyEndpoint = Endpoint[Any, Any]


def refusal(call: typing.Callable[[], object]) -> str:
    with pytest.raises(KneoUsageError) as caught:
        call()
    return str(caught.value)


# -- unknown keys at the top of a dict body, for every endpoint that takes one ---------------

# builder, path arguments, dict body, the whole message
UNKNOWN_KEYS: list[tuple[AnyEndpoint, tuple[str, ...], dict[str, Any], str]] = [
    (
        endpoints.create_run,
        (),
        {"spec_id": "s", "input": {}},
        "unknown field 'input' in the RunCreateRequest body; did you mean 'inputs'? "
        "Known fields: environment, inputs, labels, spec, spec_id",
    ),
    (
        endpoints.run_spec,
        (),
        {"spec": "x", "spec_ID": "s"},
        "unknown field 'spec_ID' in the RunCreateRequest body; did you mean 'spec_id'? "
        "Known fields: environment, inputs, labels, spec, spec_id",
    ),
    (
        endpoints.resume_human_task,
        ("cont-1",),
        {"decision": "approve", "coment": "ok"},
        "unknown field 'coment' in the HumanResumeRequest body; did you mean 'comment'? "
        "Known fields: comment, data, decision, reviewer",
    ),
    (
        endpoints.put_environment_policy,
        ("prod",),
        {"allowed_tool": ["crm"]},
        "unknown field 'allowed_tool' in the EnvironmentPolicyRequest body; did you mean "
        "'allowed_tools'? Known fields: allowed_spec_ids, allowed_tools, denied_spec_ids, "
        "max_run_seconds, require_human_review",
    ),
    (
        endpoints.validate_spec,
        (),
        {"spec": "x", "formt": "yaml"},
        "unknown field 'formt' in the SpecValidateRequest body; did you mean 'format'? "
        "Known fields: environment, format, spec",
    ),
    (
        endpoints.compile_spec,
        (),
        {"spec": "x", "env": "dev"},
        "unknown field 'env' in the SpecCompileRequest body; did you mean 'environment'? "
        "Known fields: environment, format, spec",
    ),
    (
        endpoints.explain_spec,
        (),
        {"specs": "x"},
        "unknown field 'specs' in the SpecExplainRequest body; did you mean 'spec'? "
        "Known fields: environment, format, spec",
    ),
    (
        endpoints.spec_policy_report,
        (),
        {"spec": "x", "zzz": 1},
        "unknown field 'zzz' in the SpecPolicyReportRequest body. "
        "Known fields: environment, format, spec",
    ),
]


def test_unknown_key_table_covers_every_endpoint_with_a_body() -> None:
    with_body = {e.name for e in endpoints.ALL if e.route.body_type is not None}
    assert {builder.name for builder, *_ in UNKNOWN_KEYS} == with_body


@pytest.mark.parametrize(("builder", "args", "body", "message"), UNKNOWN_KEYS)
def test_builder_refuses_an_unknown_key_naming_the_closest_field(
    builder: AnyEndpoint, args: tuple[str, ...], body: dict[str, Any], message: str
) -> None:
    assert refusal(lambda: builder(*args, body)) == message


def test_any_mapping_is_checked_for_unknown_keys() -> None:
    body = types.MappingProxyType({"spec_i": "s"})
    assert refusal(lambda: endpoints.create_run(body)).startswith(  # type: ignore[arg-type]
        "unknown field 'spec_i' in the RunCreateRequest body; did you mean 'spec_id'?"
    )


# -- unknown keys in nested models: lists, dicts, unions and recursion -----------------------


class Rule(KneoModel, frozen=True, kw_only=True):
    name: str
    description: str | UnsetType = UNSET


class Node(KneoModel, frozen=True, kw_only=True):
    label: str
    children: list[Node] | UnsetType = UNSET


class RulesRequest(KneoModel, frozen=True, kw_only=True):
    rules: list[Rule] | UnsetType = UNSET
    by_name: dict[str, Rule] | UnsetType = UNSET
    default: Rule | UnsetType = UNSET
    tree: Node | UnsetType = UNSET
    many: list[Rule] | dict[str, Rule] | UnsetType = UNSET
    extra: dict[str, Any] | UnsetType = UNSET


RULE_FIELDS = "Known fields of Rule: description, name"
NESTED: list[tuple[object, str]] = [
    ({"rules": [{"name": "a"}, {"nmae": "b"}]}, f"'nmae' at $.rules[1] {{}}'name'? {RULE_FIELDS}"),
    (
        {"by_name": {"x": {"name": "a", "descripton": "d"}}},
        f"'descripton' at $.by_name['x'] {{}}'description'? {RULE_FIELDS}",
    ),
    ({"default": {"nam": "a"}}, f"'nam' at $.default {{}}'name'? {RULE_FIELDS}"),
    (
        {"tree": {"label": "a", "children": [{"label": "b", "children": [{"lable": "c"}]}]}},
        "'lable' at $.tree.children[0].children[0] {}'label'? "
        "Known fields of Node: children, label",
    ),
    ({"many": {"k": {"nmae": 1}}}, f"'nmae' at $.many['k'] {{}}'name'? {RULE_FIELDS}"),
    ({"many": [{"nmae": 1}]}, f"'nmae' at $.many[0] {{}}'name'? {RULE_FIELDS}"),
    # A model instance holding a dict where a model belongs is walked too.
    (RulesRequest(rules=[{"nmae": "b"}]), f"'nmae' at $.rules[0] {{}}'name'? {RULE_FIELDS}"),  # type: ignore[list-item]
]


class Cat(KneoModel, frozen=True, kw_only=True, tag=True):
    name: str


class Dog(KneoModel, frozen=True, kw_only=True, tag=True):
    name: str


class PetsRequest(KneoModel, frozen=True, kw_only=True):
    cat: Cat | UnsetType = UNSET
    pet: Cat | Dog | UnsetType = UNSET


def test_tagged_models_accept_their_tag_and_leave_tagged_unions_to_msgspec() -> None:
    """The tag picks the model of a tagged union, so its keys are not checked here; msgspec
    still checks the tag itself."""
    cat = {"type": "Cat", "name": "Tom"}
    assert encode_body({"cat": cat}, PetsRequest) == b'{"cat":{"type":"Cat","name":"Tom"}}'
    assert refusal(lambda: encode_body({"cat": {**cat, "nmae": "x"}}, PetsRequest)).startswith(
        "unknown field 'nmae' at $.cat in the PetsRequest body; did you mean 'name'?"
    )
    assert encode_body({"pet": {"type": "Dog", "name": "Rex", "nmae": "x"}}, PetsRequest)
    assert "Invalid value 'Bird'" in refusal(
        lambda: encode_body({"pet": {"type": "Bird", "name": "x"}}, PetsRequest)
    )


@pytest.mark.parametrize(("body", "message"), NESTED)
def test_nested_unknown_key_is_refused_with_its_path(body: object, message: str) -> None:
    expected = "unknown field " + message.format("in the RulesRequest body; did you mean ")
    assert refusal(lambda: encode_body(body, RulesRequest)) == expected


def test_nested_walk_leaves_open_objects_and_known_keys_alone() -> None:
    body = {
        "rules": [{"name": "a", "description": "d"}],
        "by_name": {"x": Rule(name="b")},
        "tree": {"label": "a", "children": [{"label": "b"}]},
        "extra": {"anything": {"goes": [1]}},
    }
    assert msgspec.json.decode(encode_body(body, RulesRequest)) == msgspec.to_builtins(body)


# -- model instances are validated like dicts -------------------------------------------------

# builder, path arguments, model built with a wrong value, the whole message
WRONG_MODELS: list[tuple[AnyEndpoint, tuple[str, ...], KneoModel, str]] = [
    (
        endpoints.create_run,
        (),
        RunCreateRequest(spec_id=1),  # type: ignore[arg-type]
        "invalid RunCreateRequest body: Expected `str`, got `int` - at `$.spec_id`",
    ),
    (
        endpoints.create_run,
        (),
        RunCreateRequest(spec_id="s", labels={"team": 1}),  # type: ignore[dict-item]
        "invalid RunCreateRequest body: Expected `str`, got `int` - at `$.labels[...]`",
    ),
    (
        endpoints.resume_human_task,
        ("cont-1",),
        HumanResumeRequest(decision=None),  # type: ignore[arg-type]
        "invalid HumanResumeRequest body: Expected `str`, got `null` - at `$.decision`",
    ),
    (
        endpoints.put_environment_policy,
        ("prod",),
        EnvironmentPolicyRequest(max_run_seconds="10"),  # type: ignore[arg-type]
        "invalid EnvironmentPolicyRequest body: Expected `int`, got `str` - at `$.max_run_seconds`",
    ),
    (
        endpoints.put_environment_policy,
        ("prod",),
        EnvironmentPolicyRequest(require_human_review=1),  # type: ignore[arg-type]
        "invalid EnvironmentPolicyRequest body: Expected `bool`, got `int` - at "
        "`$.require_human_review`",
    ),
    (
        endpoints.put_environment_policy,
        ("prod",),
        EnvironmentPolicyRequest(allowed_tools="crm"),  # type: ignore[arg-type]
        "invalid EnvironmentPolicyRequest body: Expected `array`, got `str` - at `$.allowed_tools`",
    ),
    (
        endpoints.validate_spec,
        (),
        SpecValidateRequest(spec=3),  # type: ignore[arg-type]
        "invalid SpecValidateRequest body: Expected `str`, got `int` - at `$.spec`",
    ),
    (
        endpoints.spec_policy_report,
        (),
        SpecPolicyReportRequest(spec="x", environment=["prod"]),  # type: ignore[arg-type]
        "invalid SpecPolicyReportRequest body: Expected `str`, got `array` - at `$.environment`",
    ),
]


@pytest.mark.parametrize(("builder", "args", "body", "message"), WRONG_MODELS)
def test_builder_refuses_a_model_instance_with_a_wrong_value(
    builder: AnyEndpoint, args: tuple[str, ...], body: KneoModel, message: str
) -> None:
    """msgspec does not validate on construction; the body is checked before it is sent."""
    assert refusal(lambda: builder(*args, body)) == message


def test_nested_model_instance_is_validated_with_its_path() -> None:
    body = RulesRequest(rules=[Rule(name=1)])  # type: ignore[arg-type]
    assert refusal(lambda: encode_body(body, RulesRequest)) == (
        "invalid RulesRequest body: Expected `str`, got `int` - at `$.rules[0].name`"
    )


# -- enum-like parameters ---------------------------------------------------------------------

# builder, arguments, keyword arguments, the whole message
BAD_CHOICES: list[tuple[AnyEndpoint, tuple[str, ...], dict[str, Any], str]] = [
    (
        endpoints.list_runs,
        (),
        {"sort_order": "descending"},
        "sort_order must be one of 'asc', 'desc', not 'descending'; did you mean 'desc'?",
    ),
    (
        endpoints.list_runs,
        (),
        {"sort_by": "updated"},
        "sort_by must be one of 'created_at', 'updated_at', 'status', not 'updated'; "
        "did you mean 'updated_at'?",
    ),
    (
        endpoints.get_run_trace,
        ("run-1",),
        {"sort_by": "time"},
        "sort_by must be one of 'timestamp', 'sequence', not 'time'; did you mean 'timestamp'?",
    ),
    (
        endpoints.list_run_checkpoints,
        ("run-1",),
        {"sort_by": "seq", "sort_order": "asc"},
        "sort_by must be one of 'sequence', 'created_at', not 'seq'; did you mean 'sequence'?",
    ),
    (
        endpoints.list_human_tasks,
        (),
        {"sort_by": "colour"},
        "sort_by must be one of 'created_at', 'updated_at', 'status', not 'colour'",
    ),
    (
        endpoints.list_audit_events,
        (),
        {"sort_order": "DESC"},
        "sort_order must be one of 'asc', 'desc', not 'DESC'; did you mean 'desc'?",
    ),
    (
        endpoints.list_audit_events,
        (),
        {"sort_by": 3},
        "sort_by must be one of 'timestamp', 'event_type', not 3",
    ),
]


@pytest.mark.parametrize(("builder", "args", "kwargs", "message"), BAD_CHOICES)
def test_builder_refuses_a_value_outside_the_spec_enum(
    builder: AnyEndpoint, args: tuple[str, ...], kwargs: dict[str, Any], message: str
) -> None:
    assert refusal(lambda: builder(*args, **kwargs)) == message


def spec_enums() -> Iterator[tuple[str, str, list[str]]]:
    for name, (_, _, operation) in sorted(SPEC_OPS.items()):
        for param, schema in query_parameters(operation).items():
            if "enum" in schema.get("schema", {}):
                yield name, param, schema["schema"]["enum"]


SPEC_ENUMS = list(spec_enums())
# Query filters naming open server values: Literal of the known values, never refused.
OPEN_FILTERS = {
    ("list_runs", "status"): models.KNOWN_RUN_STATUSES,
    ("list_human_tasks", "status"): models.KNOWN_HUMAN_TASK_STATUSES,
}


def literal_parameters(builder: AnyEndpoint) -> dict[str, tuple[object, ...]]:
    hints = typing.get_type_hints(inspect.unwrap(builder))
    found = {}
    for name, hint in hints.items():
        literals = [
            a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is typing.Literal
        ]
        if literals:
            found[name] = typing.get_args(literals[0])
    return found


def test_spec_enums_are_the_sort_parameters_of_the_five_list_endpoints() -> None:
    assert len(SPEC_ENUMS) == 10
    assert {param for _, param, _ in SPEC_ENUMS} == {"sort_by", "sort_order"}


@pytest.mark.parametrize(("name", "param", "values"), SPEC_ENUMS)
def test_enum_parameter_is_a_literal_of_the_spec_values_and_checked(
    name: str, param: str, values: list[str]
) -> None:
    builder = DECLARED[name]
    assert literal_parameters(builder)[param] == tuple(values)
    args = ("run-1",) if builder.route.placeholders else ()
    with pytest.raises(KneoUsageError, match=f"^{param} must be one of "):
        builder(*args, **{param: values[0] + "x"})
    for value in values:
        assert (param, value) in builder(*args, **{param: value}).query


def test_every_literal_parameter_is_a_spec_enum_or_an_open_filter() -> None:
    found = {
        (builder.name, param): frozenset(values)
        for builder in endpoints.ALL
        for param, values in literal_parameters(builder).items()
        if param != "body"
    }
    closed = {(name, param): frozenset(values) for name, param, values in SPEC_ENUMS}
    assert found == closed | OPEN_FILTERS


@pytest.mark.parametrize(
    ("builder", "value"),
    [(endpoints.list_runs, "archived"), (endpoints.list_human_tasks, "escalated")],
)
def test_open_status_filter_sends_an_unknown_value_as_given(
    builder: AnyEndpoint, value: str
) -> None:
    """A status the platform adds later must stay filterable (with a cast, for mypy)."""
    assert ("status", value) in builder(status=value).query


def test_open_decision_is_sent_as_given() -> None:
    op = endpoints.resume_human_task("cont-1", {"decision": "escalate"})  # type: ignore[arg-type]
    assert op.body == b'{"decision":"escalate"}'


def test_check_choice_lets_none_through_as_not_sent() -> None:
    """None leaves the parameter out (the platform's default applies), as before."""
    check_choice("sort_by", None, models.RunSortBy)
    query = endpoints.list_runs(sort_by=None).query  # type: ignore[arg-type]
    assert "sort_by" not in dict(query)


# -- the TypedDict forms agree with the models ------------------------------------------------

BODY_DICTS: dict[type[KneoModel], type] = {
    models.RunCreateRequest: models.RunCreateRequestDict,
    models.HumanResumeRequest: models.HumanResumeRequestDict,
    models.EnvironmentPolicyRequest: models.EnvironmentPolicyRequestDict,
    models.SpecValidateRequest: models.SpecValidateRequestDict,
    models.SpecCompileRequest: models.SpecCompileRequestDict,
    models.SpecExplainRequest: models.SpecExplainRequestDict,
    models.SpecPolicyReportRequest: models.SpecPolicyReportRequestDict,
}
# Where the dict form narrows an open `str` field to a Literal of its known values.
NARROWED = {
    ("HumanResumeRequest", "decision"): models.KNOWN_HUMAN_DECISIONS,
    **{
        (f"Spec{verb}Request", "format"): models.KNOWN_SPEC_FORMATS
        for verb in ("Validate", "Compile", "Explain", "PolicyReport")
    },
}


def test_every_request_model_has_a_dict_form() -> None:
    bodies = {e.route.body_type for e in endpoints.ALL if e.route.body_type is not None}
    assert bodies == set(BODY_DICTS)
    assert all(f"{m.__name__}Dict" == d.__name__ for m, d in BODY_DICTS.items())


@pytest.mark.parametrize("model", list(BODY_DICTS), ids=lambda m: m.__name__)
def test_dict_form_has_the_model_fields_types_and_required_keys(model: type[KneoModel]) -> None:
    typed = BODY_DICTS[model]
    fields = {f.encode_name: f for f in msgspec.structs.fields(model)}
    assert typed.__total__ is False  # type: ignore[attr-defined]
    assert typed.__required_keys__ == {n for n, f in fields.items() if f.required}  # type: ignore[attr-defined]
    hints = typing.get_type_hints(typed)
    assert set(hints) == set(fields)
    for name, hint in hints.items():
        wire = [a for a in typing.get_args(fields[name].type) if a is not UnsetType]
        expected = wire[0] if len(wire) == 1 else fields[name].type
        if (model.__name__, name) in NARROWED:
            assert expected is str
            assert frozenset(typing.get_args(hint)) == NARROWED[model.__name__, name]
        else:
            assert hint == expected, name


@pytest.mark.parametrize("builder", [e for e in endpoints.ALL if e.route.body_type], ids=str)
def test_body_parameter_takes_the_model_or_its_dict_form(builder: AnyEndpoint) -> None:
    hint = typing.get_type_hints(inspect.unwrap(builder))["body"]
    model = builder.route.body_type
    assert model is not None
    assert typing.get_args(hint) == (model, BODY_DICTS[model])


# -- a lone string where a collection of statuses is meant ------------------------------------

NOT_COLLECTIONS: list[tuple[object, str]] = [
    (
        "completed",
        "terminal_statuses must be a collection of statuses such as {'completed'}, "
        "not the string 'completed'",
    ),
    (
        b"completed",
        "terminal_statuses must be a collection of statuses such as {'completed'}, "
        "not the bytes b'completed'",
    ),
    (
        bytearray(b"failed"),
        "terminal_statuses must be a collection of statuses such as {'failed'}, "
        "not the bytes bytearray(b'failed')",
    ),
    (3, "terminal_statuses must be a collection of statuses, not int"),
    ([b"completed"], "terminal_statuses must hold strings, not bytes b'completed'"),
    ({"completed", 3}, "terminal_statuses must hold strings, not int 3"),
]


@pytest.mark.parametrize(("value", "message"), NOT_COLLECTIONS)
def test_run_poll_refuses_a_string_for_terminal_statuses_before_any_poll(
    value: object, message: str
) -> None:
    statuses: Any = value
    assert (
        refusal(lambda: RunPoll("run-1", clock=FakeClock().clock(), terminal_statuses=statuses))
        == message
    )


COLLECTIONS: list[object] = [
    {"completed"},
    frozenset({"completed"}),
    ["completed"],
    ("completed",),
    iter(["completed"]),
    {"completed": 1}.keys(),
]


@pytest.mark.parametrize("value", COLLECTIONS, ids=lambda v: type(v).__name__)
def test_check_collection_accepts_any_iterable_of_strings(value: object) -> None:
    assert check_collection("terminal_statuses", value, "statuses") == {"completed"}
