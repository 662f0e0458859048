"""The operation table and spec/ agree both ways: every spec operation is declared once,
with the same method, path, parameters, defaults, body and result; nothing else is."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from kneo_proto import endpoints
from kneo_proto._operation import Endpoint
from tests.support.spec import spec_operation_count

SPEC_PATH = Path(__file__).parents[2] / "spec" / "kneo-v1.openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                found[operation["operationId"]] = (method.upper(), path, operation)
    return found


SPEC_OPS = spec_operations()
DECLARED: dict[str, Endpoint[Any, Any]] = {e.name: e for e in endpoints.ALL}


def resolve(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return resolve(node)


def test_endpoints_cover_every_spec_operation_and_nothing_else() -> None:
    assert len(SPEC_OPS) == spec_operation_count()
    assert len(endpoints.ALL) == spec_operation_count()
    assert set(DECLARED) == set(SPEC_OPS)


def test_endpoints_are_declared_once() -> None:
    routes = [(e.route.method, e.route.template) for e in endpoints.ALL]
    assert len(routes) == len(set(routes)) == spec_operation_count()


@pytest.mark.parametrize("name", sorted(SPEC_OPS))
def test_endpoint_method_and_path_match_spec(name: str) -> None:
    method, path, _ = SPEC_OPS[name]
    route = DECLARED[name].route
    assert (route.method, route.template) == (method, path)


def query_parameters(operation: dict[str, Any]) -> dict[str, Any]:
    params = [resolve(p) for p in operation.get("parameters", [])]
    return {p["name"]: p for p in params if p["in"] == "query"}


@pytest.mark.parametrize("name", sorted(SPEC_OPS))
def test_endpoint_query_parameters_and_defaults_match_spec(name: str) -> None:
    _, _, operation = SPEC_OPS[name]
    signature = inspect.signature(DECLARED[name])
    declared = {n: p.default for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}
    declared.pop("idempotency_key", None)
    spec_params = query_parameters(operation)
    assert set(declared) == set(spec_params)
    for param_name, param in spec_params.items():
        expected = param.get("schema", {}).get("default")
        assert declared[param_name] == expected, param_name


@pytest.mark.parametrize("name", sorted(SPEC_OPS))
def test_endpoint_path_parameters_match_spec(name: str) -> None:
    _, _, operation = SPEC_OPS[name]
    params = [resolve(p) for p in operation.get("parameters", [])]
    path_params = {p["name"] for p in params if p["in"] == "path"}
    assert set(DECLARED[name].route.placeholders) == path_params


@pytest.mark.parametrize("name", sorted(SPEC_OPS))
def test_endpoint_body_and_result_types_match_spec(name: str) -> None:
    _, _, operation = SPEC_OPS[name]
    route = DECLARED[name].route
    body = operation.get("requestBody")
    if body is None:
        assert route.body_type is None
    else:
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert route.body_type is not None
        assert ref.rsplit("/", 1)[-1] == route.body_type.__name__
    success = resolve(next(r for s, r in operation["responses"].items() if s.startswith("2")))
    schema_ref = success["content"]["application/json"]["schema"]["$ref"]
    schema_name = schema_ref.rsplit("/", 1)[-1]
    if route.result_type is dict:
        assert resolve(success["content"]["application/json"]["schema"])["type"] == "object"
    else:
        assert schema_name == route.result_type.__name__


@pytest.mark.parametrize("name", sorted(SPEC_OPS))
def test_endpoint_idempotency_key_parameter_only_on_post(name: str) -> None:
    method, _, _ = SPEC_OPS[name]
    has_key = "idempotency_key" in inspect.signature(DECLARED[name]).parameters
    assert has_key == (method == "POST")


def test_paginated_endpoints_name_their_items_field() -> None:
    paginated = [e for e in endpoints.ALL if "limit" in inspect.signature(e).parameters]
    assert len(paginated) == 5
    for endpoint in paginated:
        _, _, operation = SPEC_OPS[endpoint.name]
        success = resolve(next(r for s, r in operation["responses"].items() if s.startswith("2")))
        schema = resolve(success["content"]["application/json"]["schema"])
        assert endpoint.route.items_field in schema["properties"]
        assert schema["properties"][endpoint.route.items_field]["type"] == "array"
