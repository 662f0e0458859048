"""Endpoints and operations: each /v1 endpoint declared once, as a typed builder.

An ``Endpoint`` wraps a small function that names the endpoint's arguments and returns
their ``Parts``; calling the endpoint returns an immutable ``Operation`` carrying the
method, the quoted path, the query, the encoded body and the decoder of the result type.
Both facades (async and blocking) bind the same ``Endpoint`` objects.

Invariants: a path parameter always becomes exactly one path segment, percent-encoded with
no safe characters, and ``.``/``..``/empty values are refused; query values are
percent-encoded; a POST gets an idempotency key (the caller's, validated, or a fresh UUID4)
and no other method does; every body and every decoder goes through msgspec.
"""

from __future__ import annotations

import enum
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, get_args, get_origin
from urllib.parse import quote, unquote

import msgspec

from kneo_proto._errors import KneoDecodeError, KneoUsageError
from kneo_proto._idempotency import new_idempotency_key, validate_idempotency_key
from kneo_proto._request_check import encode_body
from kneo_proto.models._strict import strict_response_type

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "Operation",
    "Parts",
    "Route",
    "check_page",
    "encode_path_param",
    "endpoint",
    "raw_operation",
]

R = TypeVar("R")
P = ParamSpec("P")

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_DOT_SEGMENTS = frozenset({"", ".", ".."})
_TOKEN_METHOD = re.compile(r"[A-Z]+")
_PLAIN_PATH = re.compile(r"/[!$&'()*+,;=:@%\-._~/A-Za-z0-9]*")
_json_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Parts:
    """The arguments of one endpoint call, before encoding.

    Attributes:
        path: Values for the path template's placeholders.
        query: Query parameters; None values are left out.
        body: The JSON body: a model, a mapping, or None for no body.
        idempotency_key: A caller-chosen key for a POST, or None for a fresh one.
    """

    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, object] = field(default_factory=dict)
    body: object = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Operation(Generic[R]):
    """One endpoint call, ready to be turned into requests by a ``Call``.

    Attributes:
        name: The endpoint's operation ID (the builder's name), e.g. ``get_run``.
        method: The HTTP method.
        template: The path template, e.g. ``/v1/runs/{run_id}``.
        path: The quoted path, e.g. ``/v1/runs/run%2F1``.
        query: Encoded query pairs.
        body: The encoded JSON body, or None.
        idempotency_key: The ``Idempotency-Key`` for a POST, else None.
        decode: Turns a 2xx body into the result, tolerantly (ADR 0011), raising
            ``KneoDecodeError`` when it cannot.
        check_strict: Raises ``KneoDecodeError`` unless a 2xx body holds everything
            ``spec/`` requires (used when ``strict_responses`` is on); None for raw results.
    """

    name: str
    method: str
    template: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: bytes | None
    idempotency_key: str | None
    decode: Callable[[bytes], R] = field(repr=False, compare=False)
    check_strict: Callable[[bytes], None] | None = field(default=None, repr=False, compare=False)

    @property
    def target(self) -> str:
        """The request target: the path plus the encoded query string."""
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{k}={v}" for k, v in self.query)


def check_page(limit: int, offset: int) -> None:
    """Raise ``KneoUsageError`` unless 1 <= limit <= 1000 and offset >= 0 (the spec's bounds)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise KneoUsageError(f"limit must be an integer from 1 to 1000, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise KneoUsageError(f"offset must be an integer >= 0, not {offset!r}")


def encode_path_param(name: str, value: object) -> str:
    """Return ``value`` percent-encoded as exactly one path segment.

    Raises:
        KneoUsageError: for a non-string, an empty value, ``.``, ``..`` or their encoded forms.
    """
    if not isinstance(value, str):
        raise KneoUsageError(f"path parameter {name} must be a string, not {type(value).__name__}")
    if value in _DOT_SEGMENTS or unquote(value) in _DOT_SEGMENTS:
        raise KneoUsageError(f"path parameter {name} must not be empty, '.' or '..'")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise KneoUsageError(f"path parameter {name} is not valid Unicode text") from None


def _query_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str | int | float):
        try:
            return quote(str(value), safe="")
        except UnicodeEncodeError:
            raise KneoUsageError(f"query parameter {name} is not valid Unicode text") from None
    raise KneoUsageError(f"query parameter {name} has unsupported type {type(value).__name__}")


def _encode_query(query: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        values: Iterable[object] = (
            value if isinstance(value, list | tuple | set | frozenset) else (value,)
        )
        pairs.extend(
            (quote(name, safe=""), _query_value(name, item)) for item in values if item is not None
        )
    return tuple(pairs)


def _items_accessor(result_type: type, field: str) -> tuple[Callable[[Any], Sequence[Any]], type]:
    """The reader of a list result's ``field`` and its item type.

    Raises ``TypeError`` when ``result_type`` declares no such list field, so a declaration
    mistake shows when the endpoint module is imported.
    """
    declared = {info.name: info.type for info in msgspec.structs.fields(result_type)}
    field_type = declared.get(field)
    if get_origin(field_type) is not list:
        raise TypeError(f"{result_type.__name__} has no list field {field!r} to page through")
    return operator.attrgetter(field), get_args(field_type)[0]


class Route(Generic[R]):
    """The fixed half of an endpoint: method, path template, body and result types."""

    __slots__ = (
        "_strict_decoder",
        "body_type",
        "decoder",
        "item_type",
        "items_field",
        "items_of",
        "method",
        "placeholders",
        "result_type",
        "template",
    )

    def __init__(
        self,
        method: str,
        template: str,
        result_type: type[R],
        body_type: type | None = None,
        items_field: str | None = None,
    ) -> None:
        self.method = method
        self.items_field = items_field
        self.items_of: Callable[[R], Sequence[Any]] | None = None
        """For a list endpoint, reads a result's items (checked against ``result_type`` once)."""
        self.item_type: type | None = None
        """For a list endpoint, the type of one item, as ``result_type`` declares it."""
        if items_field is not None:
            self.items_of, self.item_type = _items_accessor(result_type, items_field)
        self.template = template
        self.placeholders = tuple(_PLACEHOLDER.findall(template))
        self.result_type = result_type
        self.body_type = body_type
        # Tolerant (ADR 0011): missing and null non-essential fields, unknown fields and
        # lax scalars ("3" for 3, a POSIX time for a datetime) decode; the strict twin is
        # built on first use, only for clients with strict_responses on.
        self.decoder = msgspec.json.Decoder(result_type, strict=False)
        self._strict_decoder: msgspec.json.Decoder[Any] | None = None

    def decode(self, body: bytes) -> R:
        """Decode a 2xx ``body`` into the result type tolerantly, or raise ``KneoDecodeError``."""
        try:
            return self.decoder.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise KneoDecodeError(
                f"{self.method} {self.template}: response body does not match "
                f"{getattr(self.result_type, '__name__', self.result_type)}: {exc}"[:1024]
            ) from None

    def check_strict(self, body: bytes) -> None:
        """Raise ``KneoDecodeError`` unless ``body`` holds all ``spec/`` requires of it."""
        if self._strict_decoder is None:
            self._strict_decoder = msgspec.json.Decoder(strict_response_type(self.result_type))
        try:
            self._strict_decoder.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise KneoDecodeError(
                f"{self.method} {self.template}: response body does not match spec/'s "
                f"{getattr(self.result_type, '__name__', self.result_type)} "
                f"(strict_responses is on): {exc}"[:1024]
            ) from None

    def encode_body(self, body: object) -> bytes | None:
        """Check a model or dict body against the body type and encode it as JSON.

        Unknown keys (nested ones included), mistyped values and invalid model instances are
        refused with a ``KneoUsageError`` before anything is sent (``_request_check``).
        """
        if body is None:
            return None
        if self.body_type is None:
            raise KneoUsageError(f"{self.method} {self.template} takes no body")
        return encode_body(body, self.body_type)

    def bind(self, name: str, parts: Parts) -> Operation[R]:
        """Return the ``Operation`` for one call with ``parts``."""
        path = self.template
        for placeholder in self.placeholders:
            value = parts.path.get(placeholder)
            path = path.replace("{" + placeholder + "}", encode_path_param(placeholder, value))
        key: str | None = None
        if self.method == "POST":
            key = parts.idempotency_key
            if key is None:
                key = new_idempotency_key()
            else:
                validate_idempotency_key(key)
        return Operation(
            name=name,
            method=self.method,
            template=self.template,
            path=path,
            query=_encode_query(parts.query),
            body=self.encode_body(parts.body),
            idempotency_key=key,
            decode=self.decode,
            check_strict=self.check_strict,
        )


class Endpoint(Generic[P, R]):
    """A typed endpoint builder: call it with the endpoint's arguments to get an Operation.

    Attributes:
        name: The operation ID, the builder function's name.
        route: Method, path template, body and result types.
    """

    def __init__(self, build: Callable[P, Parts], route: Route[R]) -> None:
        self._build = build
        self.route = route
        self.name = build.__name__
        functools.update_wrapper(self, build)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Operation[R]:
        """Build the operation for one call."""
        return self.route.bind(self.name, self._build(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<Endpoint {self.name}: {self.route.method} {self.route.template}>"


ENDPOINTS: list[Endpoint[Any, Any]] = []
"""Every declared endpoint, in declaration order (filled as endpoint modules import)."""


def endpoint(
    method: str,
    template: str,
    result: type[R],
    *,
    body: type | None = None,
    items: str | None = None,
) -> Callable[[Callable[P, Parts]], Endpoint[P, R]]:
    """Declare an endpoint: decorate the function that names its arguments.

    Args:
        method: The HTTP method.
        template: The path template, placeholders in braces.
        result: The type a 2xx body decodes into.
        body: The request body's model, for endpoints that take one.
        items: For a paginated list endpoint, the response field holding the items: a list
            field of ``result`` (else ``TypeError`` when declared).
    """

    def declare(build: Callable[P, Parts]) -> Endpoint[P, R]:
        declared = Endpoint(build, Route(method, template, result, body, items))
        ENDPOINTS.append(declared)
        return declared

    return declare


def raw_operation(
    method: str,
    path: str,
    *,
    json: object = None,
    params: Mapping[str, object] | None = None,
    idempotency_key: str | None = None,
) -> Operation[bytes]:
    """Return an ``Operation`` for an endpoint kneo-client does not wrap yet.

    It goes through the same retry, idempotency and error machinery as a wrapped endpoint;
    its result is the raw body.

    Args:
        method: The HTTP method.
        path: The path relative to the base URL, e.g. ``/v1/some/new/endpoint``; it must
            start with one ``/`` and carry no query (use ``params``) or fragment.
        json: A JSON-encodable body.
        params: Query parameters; None values are left out.
        idempotency_key: The key for a POST (a fresh UUID4 when None); ignored otherwise.

    Raises:
        KneoUsageError: for a path that is absolute, scheme-relative or not plain.
    """
    method = method.upper()
    if _TOKEN_METHOD.fullmatch(method) is None:
        raise KneoUsageError(f"invalid HTTP method {method!r}")
    if not path.startswith("/") or path.startswith("//") or _PLAIN_PATH.fullmatch(path) is None:
        raise KneoUsageError(
            "path must be relative to the base URL, start with '/', and hold no query, "
            "fragment, space or control character (pass params= for the query)"
        )
    key: str | None = None
    if method == "POST":
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        validate_idempotency_key(key)
    body = None
    if json is not None:
        try:
            body = _json_encoder.encode(json)
        except (TypeError, ValueError, OverflowError) as exc:
            raise KneoUsageError(f"json cannot be encoded: {exc}") from None
    return Operation(
        name="request",
        method=method,
        template=path,
        path=path,
        query=_encode_query(params or {}),
        body=body,
        idempotency_key=key,
        decode=bytes,
    )
