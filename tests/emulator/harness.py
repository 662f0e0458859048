"""Drive ``Emulator.handle`` directly with ``kneo_proto.Request`` values, as a script.

``Script`` wraps an emulator: ``call`` sends one request and returns the ``Reply``;
``ok`` asserts a 2xx and decodes the body into its model; ``fails`` asserts an error status
and code and returns the ``ErrorDetail``. Every reply is also checked against the pinned
spec: its status is declared for the operation, its body decodes into the model the spec
names for that status, and it carries ``X-Request-ID``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import yaml

from kneo_client.testing._emulator import Emulator
from kneo_client.testing._reply import Reply
from kneo_client.testing._routes import find_route
from kneo_client.testing._wire import ApiError
from kneo_proto import Request, endpoints
from kneo_proto.models import ErrorDetail, ErrorResponse

T = TypeVar("T")

BASE_URL = "https://emulator.test"
SPEC_PATH = Path(__file__).parents[2] / "spec" / "kneo-v1.openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch")
RESULT_TYPES: dict[str, Any] = {e.name: e.route.result_type for e in endpoints.ALL}


def spec_operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Operation ID -> (method, path template, operation object) for every spec operation."""
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                found[item[method]["operationId"]] = (method.upper(), path, item[method])
    return found


SPEC_OPS = spec_operations()


def build_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None,
    scheme: str = "bearer",
    headers: tuple[tuple[str, str], ...] = (),
    raw_body: bytes | None = None,
) -> Request:
    """Return a request as a client would send it."""
    pairs: list[tuple[str, str]] = [("Accept", "application/json")]
    if key is not None:
        pairs.append(
            ("Authorization", f"Bearer {key}") if scheme == "bearer" else ("X-Kneo-Api-Key", key)
        )
    data = raw_body if raw_body is not None else b""
    if body is not None:
        data = msgspec.json.encode(body)
    if data or method in ("POST", "PUT"):
        pairs += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    pairs.extend(headers)
    return Request(method, BASE_URL + path, tuple(pairs), data)


def check_conforms(method: str, path: str, reply: Reply) -> None:
    """Assert that ``reply`` is what the spec declares for ``method path``."""
    response = reply.response
    assert response.header("x-request-id"), "every response carries X-Request-ID"
    assert response.header("content-type") == "application/json"
    try:
        route, _ = find_route(method, path.partition("?")[0])
    except ApiError:
        msgspec.json.decode(response.body, type=ErrorResponse)  # undeclared paths: still JSON
        return
    _, _, operation = SPEC_OPS[route.operation_id]
    declared = operation["responses"]
    assert str(response.status) in declared, f"{route.operation_id}: {response.status} undeclared"
    if 200 <= response.status < 300:
        msgspec.json.decode(response.body, type=RESULT_TYPES[route.operation_id])
    else:
        msgspec.json.decode(response.body, type=ErrorResponse)


class Script:
    """An emulator driven request by request.

    Args:
        emulator: The emulator; a new one when None.
    """

    def __init__(self, emulator: Emulator | None = None) -> None:
        self.emulator = emulator if emulator is not None else Emulator()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | bool | None = True,
        scheme: str = "bearer",
        headers: tuple[tuple[str, str], ...] = (),
        raw_body: bytes | None = None,
        check: bool = True,
    ) -> Reply:
        """Send one request (with the operator key unless ``key`` says otherwise)."""
        chosen = self.emulator.api_key if key is True else (None if key is False else key)
        request = build_request(
            method, path, body, key=chosen, scheme=scheme, headers=headers, raw_body=raw_body
        )
        reply = self.emulator.handle(request)
        if check and reply.response.body[:1] == b"{":
            check_conforms(method, path, reply)
        return reply

    def ok(self, method: str, path: str, body: Any = None, *, model: type[T], **kw: Any) -> T:
        """Send a request that must succeed; return its decoded body."""
        reply = self.call(method, path, body, **kw)
        status = reply.response.status
        assert 200 <= status < 300, f"{method} {path}: {status} {reply.response.body!r}"
        return msgspec.json.decode(reply.response.body, type=model)

    def fails(
        self, method: str, path: str, body: Any = None, *, status: int, code: str, **kw: Any
    ) -> ErrorDetail:
        """Send a request that must fail with ``status`` and ``code``; return the error."""
        reply = self.call(method, path, body, **kw)
        assert reply.response.status == status, reply.response.body
        error = msgspec.json.decode(reply.response.body, type=ErrorResponse).error
        assert error.code == code, error
        return error

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock."""
        self.emulator.advance(seconds)


def given(value: T | msgspec.UnsetType | None) -> T:
    """Return a field the response must have set (fails the test when it is UNSET or null)."""
    assert not isinstance(value, msgspec.UnsetType), "expected the field to be set"
    assert value is not None, "expected the field not to be null"
    return value


def segment(value: str) -> str:
    """Percent-encode ``value`` as one path segment."""
    return quote(value, safe="")
