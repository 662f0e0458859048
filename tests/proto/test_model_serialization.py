"""``KneoModel.to_dict()`` and ``to_json()``: a decoded model gives back the JSON it came from.

Every exported model is filled in every field (nested models too), decoded from that JSON and
turned back: the result must equal the wire JSON, compared as parsed JSON (key order and
spacing aside), with fields the platform left out still left out.
"""

from __future__ import annotations

import datetime
import enum
import json
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pytest

from kneo_proto import models
from kneo_proto.models import (
    UNSET,
    ErrorDetail,
    KneoModel,
    RunCreateRequest,
    RunStatusResponse,
)

Json = dict[str, Any]

TIMESTAMP = "2026-05-04T09:30:00Z"
OPEN_VALUE = {"nested": [1, 2.5, "three", None, True], "empty": {}}


def _exported_models() -> dict[str, type[KneoModel]]:
    exported = (getattr(models, name) for name in models.__all__)
    return {
        cls.__name__: cls
        for cls in exported
        if isinstance(cls, type) and issubclass(cls, KneoModel) and cls is not KneoModel
    }


MODELS = _exported_models()


def _concrete(hint: Any) -> Any:
    """The one type a field holds when set: without Annotated, None and UNSET."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) in (Union, types.UnionType):
        kept = [a for a in get_args(hint) if a not in (type(None), msgspec.UnsetType)]
        assert len(kept) == 1, hint
        return kept[0]
    return hint


def filled(hint: Any) -> Any:
    """A JSON value of type ``hint`` with every field of every model in it set."""
    hint = _concrete(hint)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        hints = typing.get_type_hints(hint, include_extras=True)
        return {f.encode_name: filled(hints[f.name]) for f in msgspec.structs.fields(hint)}
    origin = get_origin(hint)
    if origin is list:
        return [filled(get_args(hint)[0]), filled(get_args(hint)[0])]
    if origin is dict:
        return {"first": filled(get_args(hint)[1])}
    scalars: dict[Any, Any] = {
        Any: OPEN_VALUE,
        str: "text",
        int: 7,
        bool: True,
        float: 1.5,
        datetime.datetime: TIMESTAMP,
    }
    return scalars[hint]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_turns_back_into_the_json_it_was_decoded_from(name: str) -> None:
    wire = filled(MODELS[name])
    model = msgspec.json.decode(json.dumps(wire), type=MODELS[name])
    assert model.to_dict() == wire
    assert json.loads(model.to_json()) == wire


def test_fields_left_out_stay_out_and_null_stays_null() -> None:
    wire = {"run_id": "r1", "status": "running", "started_at": None}
    run = msgspec.json.decode(json.dumps(wire), type=RunStatusResponse)
    assert run.spec_id is UNSET
    assert run.to_dict() == wire
    assert json.loads(run.to_json()) == wire


def test_a_request_model_leaves_its_unset_fields_out() -> None:
    body = RunCreateRequest(spec_id="support-triage", inputs={"ticket": 42})
    assert body.to_dict() == {"spec_id": "support-triage", "inputs": {"ticket": 42}}
    assert body.to_json() == '{"spec_id":"support-triage","inputs":{"ticket":42}}'


class Priority(enum.Enum):
    HIGH = "high"


def test_nested_models_datetimes_and_enums_become_json_builtins() -> None:
    created = datetime.datetime(
        2026, 5, 4, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    run = RunStatusResponse(
        run_id="r1",
        status="failed",
        created_at=created,
        outputs={"priority": Priority.HIGH, "at": created},
        error=ErrorDetail(code="validation_error", details={"field": "inputs"}),
    )
    expected = {
        "run_id": "r1",
        "status": "failed",
        "created_at": "2026-05-04T09:30:00+02:00",
        "outputs": {"priority": "high", "at": "2026-05-04T09:30:00+02:00"},
        "error": {"code": "validation_error", "details": {"field": "inputs"}},
    }
    assert run.to_dict() == expected
    assert json.loads(run.to_json()) == expected


def test_to_dict_returns_a_fresh_dict_each_time() -> None:
    run = RunStatusResponse(run_id="r1", status="running", outputs={"n": 1})
    first = run.to_dict()
    first["outputs"]["n"] = 2
    assert run.to_dict() == {"run_id": "r1", "status": "running", "outputs": {"n": 1}}


def test_to_json_returns_text() -> None:
    assert isinstance(RunCreateRequest(spec_id="s").to_json(), str)
