"""What the emulator's handlers exchange: outcomes, API errors, query and body decoding.

Invariants: every body the emulator builds goes through ``kneo_proto.models`` Structs (or,
for the open policy report, a plain JSON object), so it conforms to ``spec/``; every error is
the spec's ``ErrorResponse`` with one of its codes; query and body problems become 400/422
``validation_error`` errors that name the offending parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import msgspec

from kneo_proto.models import (
    ERROR_CODE_VALIDATION_ERROR,
    ErrorDetail,
    ErrorResponse,
)

__all__ = [
    "ApiError",
    "Context",
    "Outcome",
    "Query",
    "decode_body",
    "error_outcome",
    "json_outcome",
    "retry_after_value",
]

T = TypeVar("T")
HeaderList = tuple[tuple[str, str], ...]
_encoder = msgspec.json.Encoder()
# Python refuses int() of more than 4300 digits; anything that long is out of bounds anyway.
_INTEGER = re.compile(r"-?[0-9]{1,4000}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A response before the emulator adds its common headers (request ID, content type).

    Attributes:
        status: The HTTP status.
        body: The encoded JSON body.
        headers: Headers specific to this outcome (e.g. ``Retry-After``).
    """

    status: int
    body: bytes
    headers: HeaderList = ()


@dataclass
class ApiError(Exception):
    """Raised inside a handler to answer with the spec's ``ErrorResponse``.

    Attributes:
        status: The HTTP status.
        code: The error code (``ErrorDetail.code``).
        message: The human-readable explanation.
        details: Code-specific context, e.g. the failing parameter.
        headers: Extra response headers.
    """

    status: int
    code: str
    message: str
    details: dict[str, Any] | None = None
    headers: HeaderList = field(default=())

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def json_outcome(payload: object, status: int = 200, headers: HeaderList = ()) -> Outcome:
    """Encode ``payload`` (a model or a JSON-compatible value) as an outcome."""
    return Outcome(status, _encoder.encode(payload), headers)


def error_outcome(error: ApiError, request_id: str) -> Outcome:
    """Return ``error`` as the spec's ``ErrorResponse`` outcome."""
    detail = ErrorDetail(
        code=error.code,
        message=error.message,
        request_id=request_id,
        details=error.details if error.details is not None else msgspec.UNSET,
    )
    return json_outcome(ErrorResponse(error=detail), error.status, error.headers)


def retry_after_value(seconds: float) -> str:
    """Return ``seconds`` as a ``Retry-After`` delay-seconds value (RFC 9110 section 10.2.3).

    Delay-seconds is a non-negative integer, so a fraction rounds up: waiting a little long
    is safe, waiting too short is not.
    """
    return str(max(0, math.ceil(seconds)))


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(422, ERROR_CODE_VALIDATION_ERROR, message, {"parameter": name})


class Query:
    """The query parameters of a request, with typed, bounds-checked getters."""

    def __init__(self, query_string: str) -> None:
        self._values: Mapping[str, list[str]] = parse_qs(query_string, keep_blank_values=True)

    def text(self, name: str) -> str | None:
        """Return parameter ``name`` (its first value), or None when absent."""
        values = self._values.get(name)
        return values[0] if values else None

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """Return parameter ``name`` as an integer within bounds, or ``default`` when absent.

        Raises:
            ApiError: 422 ``validation_error`` when it is not an integer or out of bounds.
        """
        value = self.optional_integer(name, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def optional_integer(
        self, name: str, *, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        """Return parameter ``name`` as an integer within bounds, or None when absent.

        Raises:
            ApiError: 422 ``validation_error`` when it is not an integer or out of bounds.
        """
        raw = self.text(name)
        if raw is None:
            return None
        if _INTEGER.fullmatch(raw) is None:
            raise _invalid(name, f"{name} must be an integer, not {raw!r}")
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise _invalid(name, f"{name} must be {bounds}, not {value}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """Return parameter ``name`` if it is one of ``allowed``, else ``default`` when absent.

        Raises:
            ApiError: 422 ``validation_error`` naming the allowed values.
        """
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in allowed:
            raise _invalid(name, f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
        return raw


def decode_body(body: bytes, model: type[T]) -> T:
    """Decode a JSON request body into ``model``.

    Raises:
        ApiError: 400 when the body is missing or is not JSON; 422 when it is JSON that does
            not match the model (the message names the field, e.g. ``$.spec_id``).
    """
    if not body.strip():
        raise ApiError(400, ERROR_CODE_VALIDATION_ERROR, "a JSON request body is required")
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, ERROR_CODE_VALIDATION_ERROR, f"malformed JSON body: {exc}") from None
    if not isinstance(raw, dict):
        raise ApiError(422, ERROR_CODE_VALIDATION_ERROR, "the request body must be a JSON object")
    try:
        return msgspec.convert(raw, model)
    except msgspec.ValidationError:
        pass
    try:  # JSON Schema's "integer" admits 5.0 (RFC 8259 numbers have no int/float split)
        return msgspec.convert(_integral(raw), model)
    except msgspec.ValidationError as exc:
        raise ApiError(422, ERROR_CODE_VALIDATION_ERROR, f"invalid request body: {exc}") from None


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class Context:
    """One authenticated request, as a handler sees it.

    Attributes:
        method: The HTTP method.
        path: The request path, without the query.
        params: The path parameters, percent-decoded.
        query: The query parameters.
        body: The request body.
        principal: Who is acting (derived from the API key).
        request_id: The request's correlation ID (``X-Request-ID``).
        now: The emulator's time when the request arrived.
    """

    method: str
    path: str
    params: Mapping[str, str]
    query: Query
    body: bytes
    principal: str
    request_id: str
    now: float
