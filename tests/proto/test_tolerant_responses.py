"""Liberal in what we accept (ADR 0011): responses decode tolerantly unless the client asks
for ``strict_responses``.

For every endpoint: a body holding only the essential fields decodes (the rest read as
``UNSET``), ``null`` in every non-essential field reads as ``None``, unknown fields and enum
values are ignored; a body missing an essential field, or not JSON, is a
``KneoDecodeError`` that says how to recover after a POST. With ``strict_responses`` the
same sparse bodies are refused against ``spec/``.
"""

from __future__ import annotations

import datetime
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pytest

from kneo_proto import (
    ENDPOINTS,
    ClientConfig,
    Endpoint,
    KneoDecodeError,
    PageWalk,
    endpoints,
    models,
    page_of,
)
from kneo_proto.models import (
    UNSET,
    AuditEventListResponse,
    EnvironmentPolicyResponse,
    KneoModel,
    RunCreateResponse,
    RunStatusResponse,
)
from kneo_proto.models._strict import essential_fields, expected_fields, strict_response_type
from tests.proto.harness import API_KEY, BASE_URL, Reply, drive, scripted

Json = dict[str, Any]

STRICT = ClientConfig(base_url=BASE_URL, api_key=API_KEY, strict_responses=True)
TOLERANT = ClientConfig(base_url=BASE_URL, api_key=API_KEY)


def _model_endpoints() -> dict[str, Endpoint[Any, Any]]:
    return {
        e.name: e
        for e in ENDPOINTS
        if isinstance(e.route.result_type, type) and issubclass(e.route.result_type, KneoModel)
    }


MODEL_ENDPOINTS = _model_endpoints()


def _plain(hint: Any) -> Any:
    """The one concrete type of a field, without Annotated, None and UNSET."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) in (Union, types.UnionType):
        kept = [a for a in get_args(hint) if a not in (type(None), msgspec.UnsetType)]
        return kept[0] if len(kept) == 1 else hint
    return hint


def sample(hint: Any, *, nulls: bool) -> Any:
    """A JSON value of type ``hint``; models hold their essential fields only, or, with
    ``nulls``, ``null`` in every other field too."""
    hint = _plain(hint)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return sparse(hint, nulls=nulls)
    origin = get_origin(hint)
    if origin is list:
        return [sample(get_args(hint)[0], nulls=nulls)]
    if origin is dict or hint is Any:
        return {}
    values: dict[Any, Any] = {
        str: "x",
        int: 1,
        bool: True,
        float: 1.5,
        datetime.datetime: "2026-05-04T09:30:00Z",
    }
    return values[hint]


def sparse(model: type[msgspec.Struct], *, nulls: bool = False) -> Json:
    hints = typing.get_type_hints(model, include_extras=True)
    body = {name: sample(hints[name], nulls=nulls) for name in essential_fields(model)}
    if nulls:
        body |= {f.name: None for f in msgspec.structs.fields(model) if not f.required}
    return body


def _routes() -> list[str]:
    return sorted(MODEL_ENDPOINTS)


@pytest.mark.parametrize("name", _routes())
def test_a_body_with_only_the_essential_fields_decodes(name: str) -> None:
    route = MODEL_ENDPOINTS[name].route
    result = route.decode(msgspec.json.encode(sparse(route.result_type)))
    for field in expected_fields(route.result_type):
        assert getattr(result, field) is UNSET, field


@pytest.mark.parametrize("name", _routes())
def test_null_in_every_non_essential_field_reads_as_none(name: str) -> None:
    route = MODEL_ENDPOINTS[name].route
    result = route.decode(msgspec.json.encode(sparse(route.result_type, nulls=True)))
    optional = [f.name for f in msgspec.structs.fields(route.result_type) if not f.required]
    assert all(getattr(result, field) is None for field in optional)


@pytest.mark.parametrize("name", _routes())
def test_strict_check_refuses_what_the_tolerant_decode_accepts(name: str) -> None:
    route = MODEL_ENDPOINTS[name].route
    body = msgspec.json.encode(sparse(route.result_type, nulls=True))
    if b"null" not in body:
        route.check_strict(body)  # nothing to tolerate: strict and tolerant agree
        return
    with pytest.raises(KneoDecodeError, match="strict_responses is on"):
        route.check_strict(body)


@pytest.mark.parametrize("name", _routes())
def test_a_missing_essential_field_is_a_decode_error(name: str) -> None:
    route = MODEL_ENDPOINTS[name].route
    body = sparse(route.result_type)
    missing = essential_fields(route.result_type)[0]
    del body[missing]
    with pytest.raises(KneoDecodeError, match=missing):
        route.decode(msgspec.json.encode(body))


def test_every_response_model_has_an_essential_field() -> None:
    assert all(essential_fields(e.route.result_type) for e in MODEL_ENDPOINTS.values())
    assert len(MODEL_ENDPOINTS) == 26  # every endpoint but the open policy report


def test_unknown_fields_and_unknown_enum_values_are_ignored() -> None:
    body = {
        "run_id": "run-1",
        "status": "hibernating",
        "spec_id": "s",
        "environment": "dev",
        "created_at": "2026-05-04T09:30:00Z",
        "updated_at": "2026-05-04T09:30:00Z",
        "shiny_new_field": {"nested": [1, 2, 3]},
    }
    run = endpoints.get_run.route.decode(msgspec.json.encode(body))
    assert (run.run_id, run.status, run.spec_id) == ("run-1", "hibernating", "s")


def test_lax_scalars_decode_a_quoted_number_and_a_posix_timestamp() -> None:
    body = {"events": [], "count": "0", "total": "0", "created": 1}
    page = endpoints.list_audit_events.route.decode(msgspec.json.encode(body))
    assert (page.count, page.total) == (0, 0)
    run = endpoints.create_run.route.decode(
        b'{"run_id": "r", "status": "queued", "created_at": 1777887000}'
    )
    assert run.created_at == datetime.datetime(2026, 5, 4, 9, 30, tzinfo=datetime.UTC)


# -- the reproductions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "absent"),
    [
        (endpoints.create_run, {"run_id": "r", "status": "queued"}, "created_at"),
        (endpoints.get_run, {"run_id": "r", "status": "running", "spec_id": "s"}, "environment"),
        (endpoints.get_run, {"run_id": "r", "status": "running"}, "spec_id"),
        (endpoints.get_environment_policy, {"environment": "prod"}, "denied_spec_ids"),
    ],
)
def test_fields_our_spec_invented_may_be_left_out(
    endpoint: Endpoint[Any, Any], body: Json, absent: str
) -> None:
    result = endpoint.route.decode(msgspec.json.encode(body))
    assert getattr(result, absent) is UNSET
    with pytest.raises(KneoDecodeError, match=absent):
        endpoint.route.check_strict(msgspec.json.encode(body))


def test_an_audit_event_with_a_null_run_id_decodes() -> None:
    body = {"events": [{"event_id": "e", "event_type": "policy.updated", "run_id": None}]}
    page = endpoints.list_audit_events.route.decode(msgspec.json.encode(body))
    assert isinstance(page, AuditEventListResponse)
    assert page.events[0].run_id is None


# -- through a call: tolerant by default, strict on request ------------------------------------


SPARSE_RUN = msgspec.json.encode({"run_id": "run-7", "status": "queued"})


def test_a_post_whose_answer_lacks_a_spec_field_succeeds() -> None:
    trace = drive(endpoints.create_run({"spec_id": "s"}), scripted(Reply(201, SPARSE_RUN)))
    assert isinstance(trace.finished.result, RunCreateResponse)
    assert trace.finished.result.run_id == "run-7"
    assert trace.finished.attempts == 1


def test_a_strict_client_refuses_the_same_answer_with_the_recovery() -> None:
    operation = endpoints.create_run({"spec_id": "s"}, idempotency_key="key-7")
    reply = Reply(201, SPARSE_RUN, headers={"X-Request-ID": "gw-9"})
    trace = drive(operation, scripted(reply), config=STRICT)

    error = trace.error
    assert isinstance(error, KneoDecodeError)
    assert (error.status, error.raw_body, error.attempts) == (201, SPARSE_RUN, 1)
    assert (error.request_id, error.idempotency_key) == ("gw-9", "key-7")
    assert error.body == {"run_id": "run-7", "status": "queued"}
    assert "created_at" in str(error)
    assert "repeat it with idempotency_key='key-7'" in str(error)


@pytest.mark.parametrize("body", [b"<html>502 from a proxy</html>", b"", b'{"status": "queued"}'])
def test_an_undecodable_post_answer_carries_everything_to_recover(body: bytes) -> None:
    operation = endpoints.create_run({"spec_id": "s"}, idempotency_key="key-8")
    trace = drive(operation, scripted(Reply(201, body)), config=TOLERANT)

    error = trace.error
    assert isinstance(error, KneoDecodeError)
    assert (error.status, error.raw_body, error.idempotency_key) == (201, body, "key-8")
    assert error.request_id is not None
    assert error.request_id == error.sent_request_id
    assert error.attempts == 1  # never retried: the run was created
    message = str(error)
    assert "POST /v1/runs" in message
    assert "succeeded on the platform (201)" in message
    assert "repeat it with idempotency_key='key-8'" in message
    assert f"request_id={error.request_id}" in message


def test_an_undecodable_get_answer_has_no_replay_advice() -> None:
    trace = drive(endpoints.get_run("run-1"), scripted(Reply(200, b"not json")))
    assert isinstance(trace.error, KneoDecodeError)
    assert "idempotency_key" not in str(trace.error)
    assert trace.error.raw_body == b"not json"


def test_a_strict_client_accepts_a_complete_answer() -> None:
    body = {
        "run_id": "r",
        "status": "queued",
        "spec_id": "s",
        "environment": "dev",
        "created_at": "2026-05-04T09:30:00Z",
        "updated_at": "2026-05-04T09:30:00Z",
    }
    reply = Reply(200, msgspec.json.encode(body))
    trace = drive(endpoints.get_run("r"), scripted(reply), config=STRICT)
    assert isinstance(trace.finished.result, RunStatusResponse)


def test_a_strict_client_refuses_null_in_an_optional_field() -> None:
    body = {"events": [{"event_id": "e", "event_type": "t", "run_id": None}]}
    trace = drive(
        endpoints.list_audit_events(),
        scripted(Reply(200, msgspec.json.encode(body))),
        config=STRICT,
    )
    assert isinstance(trace.error, KneoDecodeError)
    assert "null" in str(trace.error)


def test_policy_response_decodes_without_its_lists() -> None:
    policy = endpoints.get_environment_policy.route.decode(b'{"environment": "prod"}')
    assert isinstance(policy, EnvironmentPolicyResponse)
    assert policy.denied_spec_ids is UNSET
    assert not policy.denied_spec_ids  # UNSET and None are both falsy: `or []` reads well


# -- paging without the paging fields ---------------------------------------------------------


def _audit_page(count: int, **paging: int) -> Any:
    events = [{"event_id": f"e{n}", "event_type": "t"} for n in range(count)]
    return endpoints.list_audit_events.route.decode(
        msgspec.json.encode({"events": events, **paging})
    )


def test_a_walk_without_totals_goes_on_while_pages_come_back_full() -> None:
    walk = PageWalk(page_size=2)
    sizes = iter([2, 2, 1])
    fetched = []
    while (request := walk.next_page()) is not None:
        limit, offset = request
        page = page_of(_audit_page(next(sizes)), "events", limit=limit, offset=offset)
        fetched.append((offset, page.count))
        walk.receive_page(page)
    assert fetched == [(0, 2), (2, 2), (4, 1)]


def test_a_walk_without_totals_stops_at_an_empty_page() -> None:
    walk = PageWalk(page_size=2)
    pages = iter([2, 0])
    seen = 0
    while (request := walk.next_page()) is not None:
        page = page_of(_audit_page(next(pages)), "events", limit=request[0], offset=request[1])
        walk.receive_page(page)
        seen += page.count
    assert (seen, walk.pages) == (2, 2)


def test_page_of_prefers_what_the_platform_reported() -> None:
    page = page_of(_audit_page(1, total=9, limit=5, offset=3), "events", limit=2, offset=0)
    assert (page.total, page.limit, page.offset, page.has_more) == (9, 5, 3, True)


ADR = (
    Path(__file__).parents[2] / "docs/dev/adrs/0011-tolerant-responses-and-returned-request-ids.md"
)


def _response_models() -> dict[str, type[KneoModel]]:
    exported = (getattr(models, name) for name in models.__all__)
    return {
        cls.__name__: cls
        for cls in exported
        if isinstance(cls, type) and issubclass(cls, KneoModel) and cls is not KneoModel
        if not cls.__name__.endswith("Request") and cls.__name__ != "ListPage"
    }


def test_the_adr_lists_every_response_models_essential_fields() -> None:
    text = ADR.read_text(encoding="utf-8")
    table = text.split("<!-- essential-fields -->")[1].split("<!-- /essential-fields -->")[0]
    listed = {
        row[0].strip(" `"): tuple(f.strip(" `") for f in row[1].split(","))
        for row in (line.strip("|").split("|") for line in table.strip().splitlines()[2:])
    }
    found = {
        name: essential_fields(cls)
        for name, cls in _response_models().items()
        if essential_fields(cls)
    }
    assert listed == found


def test_strict_type_sees_through_other_annotations_and_keeps_plain_types() -> None:
    assert strict_response_type(Annotated[int, msgspec.Meta(ge=0)]) is int
    assert strict_response_type(list[str]) == list[str]
    assert strict_response_type(Any) is Any
    twin = strict_response_type(RunStatusResponse)
    assert strict_response_type(RunStatusResponse) is twin  # built once
    assert twin.__name__ == "RunStatusResponse"
