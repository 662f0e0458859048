"""T09: response decoder fuzz, h11's "typed result or typed error" invariant.

hypothesis feeds statuses 100-599, header lists (duplicates, odd casing, 8 KiB values, Latin-1
bytes) and bodies (random bytes, random JSON, valid model bodies with one field mutated to a
wrong type or cut short, error envelopes with huge codes and messages) to
``Call.receive_response`` for five endpoints, one of them a POST and one returning plain JSON.
Whatever arrives, the call must end in a result of the endpoint's type, a ``KneoError``, or a
retry with a finite sleep; nothing else may escape. The error's text and its body snippet
(a non-JSON body kept as text) must stay within 1 KiB.

The explicit corpus adds the expensive shapes once each: nesting 100,000 deep, a 5,000-digit
integer, ``NaN`` and ``Infinity``, non-UTF-8 bytes, a UTF-8 BOM and a 10 MB string. The core
decodes a whole body (a driver joins the chunks it read first), so the plan's chunked-feeding
comparison has nothing to compare here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kneo_proto import (
    Call,
    CallOptions,
    CallState,
    ClientConfig,
    Clock,
    Endpoint,
    Failed,
    Finished,
    KneoError,
    KneoProtocolError,
    RetryPolicy,
    Sleep,
    endpoints,
)
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T09")

EXAMPLES = scaled(4_000)
SNIPPET_LIMIT = 1024
CONFIG = ClientConfig(base_url="https://kneo.test", api_key="fuzz-key-0123456789")
CLOCK = Clock(monotonic=lambda: 0.0, wall=lambda: 1_700_000_000.0)
TIMESTAMP = "2025-01-01T00:00:00Z"
ECHO = "<echo the request ID>"
RUN = {
    "run_id": "r1",
    "spec_id": "s",
    "status": "running",
    "environment": "dev",
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}
PAGE = {"count": 1, "total": 1, "limit": 100, "offset": 0, "sort_by": "x", "sort_order": "asc"}
# endpoint name -> (endpoint, its arguments, a valid 2xx body)
ENDPOINTS: dict[str, tuple[Endpoint[Any, Any], tuple[Any, ...], dict[str, Any]]] = {
    "get_run": (endpoints.get_run, ("r1",), RUN),
    "list_runs": (endpoints.list_runs, (), {**PAGE, "runs": [RUN]}),
    "create_run": (
        endpoints.create_run,
        ({"spec_id": "s"},),
        {"run_id": "r1", "status": "queued", "created_at": TIMESTAMP},
    ),
    "healthz": (endpoints.healthz, (), {"ok": True, "service": "kneo"}),
    "get_run_policy_report": (endpoints.get_run_policy_report, ("r1",), {"outcomes": []}),
}
HEADER_NAMES = [
    "Content-Type",
    "content-type",
    "CONTENT-TYPE",
    "X-Request-ID",
    "x-request-id",
    "Retry-After",
    "retry-after",
    "Location",
    "Idempotent-Replayed",
    "Content-Encoding",
    "X-Other",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "text/html",
    "text/plain",
    "application/problem+json",
    "",
    "application/octet-stream",
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
WRONG_TYPES = st.sampled_from([None, 1, -1, 1.5, True, "x", [], {}, [1, "a"], {"a": 1}, 10**30])
HEADER_VALUES = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
    | st.sampled_from(CONTENT_TYPES)
    | st.sampled_from(["0", "5", "-1", "1.5", "9999999999", "Wed, 21 Oct 2015 07:28:00 GMT"])
    | st.just("v" * 8192)
)
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(HEADER_NAMES) | st.text("abcXYZ-", min_size=1, max_size=12),
        HEADER_VALUES.map(lambda value: value.encode("latin-1")) | HEADER_VALUES,
    )
    | st.just(("X-Request-ID", ECHO)),
    max_size=8,
)


def mutated(valid: dict[str, Any], data: st.DataObject) -> bytes:
    """A valid body with one field given a wrong type or removed."""
    body = dict(valid)
    field = data.draw(st.sampled_from(sorted(body)))
    if data.draw(st.booleans()):
        del body[field]
    else:
        body[field] = data.draw(WRONG_TYPES)
    return msgspec.json.encode(body)


def error_envelope(data: st.DataObject) -> bytes:
    code = data.draw(st.text(max_size=20) | st.just("c" * 100_000) | WRONG_TYPES)
    message = data.draw(st.text(max_size=40) | st.just("m" * 50_000) | WRONG_TYPES)
    return msgspec.json.encode({"error": {"code": code, "message": message}})


def draw_body(valid: dict[str, Any], data: st.DataObject) -> bytes:
    encoded = msgspec.json.encode(valid)
    kind = data.draw(
        st.sampled_from(["valid", "bytes", "json", "mutated", "truncated", "error", "text"])
    )
    if kind == "valid":
        return encoded
    if kind == "bytes":
        return data.draw(st.binary(max_size=300))
    if kind == "json":
        return msgspec.json.encode(data.draw(JSON_VALUES))
    if kind == "mutated":
        return mutated(valid, data)
    if kind == "truncated":
        return encoded[: data.draw(st.integers(0, len(encoded) - 1))]
    if kind == "error":
        return error_envelope(data)
    return data.draw(st.text(max_size=3000)).encode("utf-8")


def run_once(
    name: str,
    status: int,
    headers: list[tuple[Any, Any]],
    body: bytes,
    max_attempts: int,
) -> str:
    """Feed one response to a fresh call; check the invariant; return the outcome's label."""
    endpoint, args, _ = ENDPOINTS[name]
    call: Call[Any] = Call(
        endpoint(*args),
        CONFIG,
        clock=CLOCK,
        options=CallOptions(retry_policy=RetryPolicy(max_attempts=max_attempts), deadline=60.0),
    )
    call.next_action()
    # ECHO stands for the call's own request ID, as the platform echoes it.
    headers = [(k, call.request_id if v == ECHO else v) for k, v in headers]
    call.receive_response(status, headers, body)  # anything raised here fails the test
    action = call.next_action()
    if isinstance(action, Finished):
        assert 200 <= status < 300
        assert isinstance(action.result, endpoint.route.result_type)
        return "result"
    if isinstance(action, Sleep):
        assert call.state is CallState.READY
        assert math.isfinite(action.seconds)
        assert 0 <= action.seconds < 60
        return "retry"
    assert isinstance(action, Failed), action
    error = action.error
    assert isinstance(error, KneoError)
    # A response framed both ways (Content-Length and Transfer-Encoding) cannot be trusted:
    # the core reports it as a protocol failure, with no status.
    assert error.status == status or (error.status is None and isinstance(error, KneoProtocolError))
    assert len(str(error)) <= SNIPPET_LIMIT, (len(str(error)), str(error)[:120])
    if isinstance(error.body, str):
        assert len(error.body) <= SNIPPET_LIMIT
    return type(error).__name__


def test_core_decoder_fuzz(figure: Callable[[str, str], None]) -> None:
    outcomes: Counter[str] = Counter()
    longest = [0]

    @given(
        name=st.sampled_from(sorted(ENDPOINTS)),
        status=st.sampled_from([200, 201, 204, 400, 409, 429, 503]) | st.integers(100, 599),
        headers=HEADERS,
        max_attempts=st.sampled_from([1, 3]),
        data=st.data(),
    )
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def fuzz(
        name: str, status: int, headers: list[tuple[Any, Any]], max_attempts: int, data: Any
    ) -> None:
        body = draw_body(ENDPOINTS[name][2], data)
        outcomes[run_once(name, status, headers, body, max_attempts)] += 1
        longest[0] = max(longest[0], len(body))

    fuzz()
    total = sum(outcomes.values())
    assert total >= EXAMPLES * 0.9
    assert outcomes["result"] > 0
    assert outcomes["KneoDecodeError"] > 0
    top = ", ".join(f"{name} {n}" for name, n in outcomes.most_common(6))
    figure(
        "T09",
        f"{total:,} fuzzed responses over {len(ENDPOINTS)} endpoints: 0 foreign exceptions, "
        f"every error text and snippet <= {SNIPPET_LIMIT} chars; outcomes: {top}, ...",
    )


DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"run_id": ' + b"9" * 5000 + b"}"
CORPUS: dict[str, bytes] = {
    "nesting 100k": DEEP,
    "nested objects 100k": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "5000-digit int": HUGE_INT,
    "bare huge int": b"1" * 5000,
    "NaN": b'{"ok": NaN, "run_id": NaN}',
    "Infinity": b'{"ok": Infinity, "total": -Infinity}',
    "1e999": b'{"total": 1e999, "ok": true}',
    "non-UTF-8": b'{"run_id": "\xff\xfe\xfa", "error": {"code": "\xc3\x28"}}',
    "latin-1 text": "café au lait".encode("latin-1"),
    "BOM": b"\xef\xbb\xbf" + msgspec.json.encode(RUN),
    "UTF-16": msgspec.json.encode(RUN).decode().encode("utf-16"),
    "10 MB string": b'{"run_id": "' + b"x" * 10_000_000 + b'", "error": {"code": "big"}}',
    "10 MB text": b"<html>" + b"y" * 10_000_000,
    "empty": b"",
    "null": b"null",
}


@pytest.mark.parametrize("shape", sorted(CORPUS))
def test_core_decoder_survives_hostile_bodies(shape: str) -> None:
    body = CORPUS[shape]
    for name in ENDPOINTS:
        for status in (200, 201, 400, 409, 500, 503):
            run_once(name, status, [("X-Request-ID", ECHO), ("X-Other", "q" * 8192)], body, 1)


def test_core_error_message_clips_a_huge_server_code() -> None:
    """A 100 KB ``error.code`` stays whole on ``.code`` but is cut in the message."""
    body = msgspec.json.encode({"error": {"code": "c" * 100_000, "message": "m" * 50_000}})
    endpoint, args, _ = ENDPOINTS["create_run"]
    call: Call[Any] = Call(endpoint(*args), CONFIG, clock=CLOCK)
    call.next_action()
    call.receive_response(400, (), body)
    outcome = call.next_action()
    assert isinstance(outcome, Failed)
    assert outcome.error.code == "c" * 100_000
    assert "[" + "c" * 200 + "]" in str(outcome.error)
    assert len(str(outcome.error)) <= SNIPPET_LIMIT
