"""T07: the idempotency key lifecycle.

Auto keys come from the project's key factory (``new_idempotency_key``, which every POST
builder and ``raw_operation`` use): a million of them must be distinct UUIDv4s, and two
processes forked from one parent after ``random.seed(1234)`` must share none. A caller's key
must reach the wire byte for byte on every attempt, and every error a POST can end with must
carry its key. (``tests/proto/test_call_properties.py`` already checks, over random fault
schedules, that every attempt of a call carries one key and request ID.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from kneo_proto import (
    IDEMPOTENCY_KEY_HEADER,
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    KneoError,
    KneoUsageError,
    RetryBudget,
    RetryPolicy,
    Send,
    TokenBucket,
    endpoints,
    new_idempotency_key,
)
from kneo_proto.models import RunCreateResponse
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T07")

AUTO_KEYS = scaled(1_000_000)
FORKED_KEYS = 10_000
ROOT = Path(__file__).resolve().parents[2]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CONFIG = ClientConfig(base_url="https://kneo.test", api_key="keys-key-0123456789")

FORK_SCRIPT = """
import json, os, random, sys
from kneo_proto import endpoints

count = int(sys.argv[1])
random.seed(1234)
children = []
for _ in range(2):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        random.seed(1234)
        keys = [endpoints.create_run({"spec_id": "s"}).idempotency_key for _ in range(count)]
        os.write(write, json.dumps(keys).encode())
        os._exit(0)
    os.close(write)
    children.append((pid, read))
for pid, read in children:
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    print(b"".join(chunks).decode())
"""

# Unusual but legal keys: any visible ASCII, inner spaces and tabs, up to 256 characters.
UNUSUAL_KEYS = [
    "a",
    "~!#$%&'*+-.^_`|",
    'quote"d and back\\slash',
    "{json: [1, 2]}",
    "inner space",
    "inner\ttab",
    "k" * 256,
    "0",
    "UPPER-lower_123",
    "%41%42 is not decoded",
]
ILLEGAL_KEYS = ["", " leading", "trailing ", "cr\rlf", "new\nline", "nul\x00", "ü", "k" * 257]
LEGAL_KEY = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), min_size=1, max_size=256
).filter(lambda key: key == key.strip(" \t"))


def clock() -> Clock:
    return Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)


RETRYING = RetryPolicy(max_attempts=3, base_delay=0.0, jitter=0.0)
ONCE = RetryPolicy(max_attempts=1)


def new_call(
    key: str | None,
    policy: RetryPolicy = RETRYING,
    *,
    deadline: float | None = None,
    budget: TokenBucket | None = None,
) -> Call[RunCreateResponse]:
    return Call(
        endpoints.create_run({"spec_id": "s"}, idempotency_key=key),
        CONFIG,
        clock=clock(),
        options=CallOptions(retry_policy=policy, deadline=deadline),
        budget=budget,
    )


def sent_keys(call: Call[RunCreateResponse], statuses: list[int]) -> list[str | None]:
    """Answer each attempt with the next status; return the key every attempt carried."""
    keys: list[str | None] = []
    for status in statuses:
        action = call.next_action()
        while not isinstance(action, Send):
            assert not isinstance(action, Failed), action
            action = call.next_action()
        keys.append(action.request.header(IDEMPOTENCY_KEY_HEADER))
        body = b'{"run_id": "r1", "status": "queued"}' if status < 300 else b""
        call.receive_response(status, (), body)
    return keys


def test_core_a_million_auto_keys_are_distinct_uuid4(figure: Callable[[str, str], None]) -> None:
    keys = {new_idempotency_key() for _ in range(AUTO_KEYS)}  # a set only: no list kept
    duplicates = AUTO_KEYS - len(keys)
    malformed = sum(1 for key in keys if UUID4.fullmatch(key) is None)
    del keys
    # The builders use that factory: a new key per call, even for the same payload.
    built = [endpoints.create_run({"spec_id": "s"}).idempotency_key for _ in range(10_000)]
    assert all(key is not None and UUID4.fullmatch(key) for key in built)
    assert len(set(built)) == len(built)
    assert duplicates == 0
    assert malformed == 0
    figure(
        "T07",
        f"{AUTO_KEYS:,} auto keys: {duplicates} duplicates, "
        f"{(AUTO_KEYS - malformed) / AUTO_KEYS:.0%} UUIDv4 (version 4, variant 10xx); "
        "10,000 builder keys for one payload all distinct",
    )


def test_core_forked_processes_share_no_keys(figure: Callable[[str, str], None]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(FORKED_KEYS)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    first, second = (set(json.loads(line)) for line in done.stdout.splitlines() if line.strip())
    assert len(first) == len(second) == FORKED_KEYS
    shared = len(first & second)
    assert shared == 0
    figure(
        "T07",
        f"2 processes forked after random.seed(1234), {FORKED_KEYS:,} keys each: {shared} shared",
    )


def test_core_user_key_is_sent_byte_exact_on_every_attempt(
    figure: Callable[[str, str], None],
) -> None:
    assert UNUSUAL_KEYS
    for key in UNUSUAL_KEYS:
        keys = sent_keys(new_call(key), [503, 502, 201])
        assert keys == [key, key, key]
        assert all(k is not None and k.encode("latin-1") == key.encode("ascii") for k in keys)
    figure(
        "T07",
        f"user keys byte-exact on every attempt: {len(UNUSUAL_KEYS)} unusual keys x 3 attempts "
        f"+ {scaled(500)} generated x 2; {len(ILLEGAL_KEYS)} illegal keys refused before sending",
    )


@pytest.mark.parametrize("key", ILLEGAL_KEYS)
def test_core_illegal_user_key_is_refused_before_sending(key: str) -> None:
    with pytest.raises(KneoUsageError):
        endpoints.create_run({"spec_id": "s"}, idempotency_key=key)


@given(key=LEGAL_KEY)
@settings(max_examples=scaled(500), derandomize=True, deadline=None)
def test_core_generated_user_keys_are_sent_byte_exact(key: str) -> None:
    assert sent_keys(new_call(key), [429, 201]) == [key, key]


def failing_calls(key: str | None) -> Iterator[tuple[str, Call[RunCreateResponse]]]:
    """One call per way a POST can end in an error, each driven to that error."""
    for status in [*range(100, 200), *range(300, 600)]:
        call = new_call(key, ONCE)
        sent_keys(call, [status])
        yield f"status {status}", call
    for kind in FailureKind:
        call = new_call(key, ONCE)
        call.next_action()
        call.receive_failure(kind, "keys")
        yield f"failure {kind.value}", call
    exhausted = new_call(key)
    sent_keys(exhausted, [503, 503, 503])
    yield "retries exhausted", exhausted
    denied = new_call(key, budget=TokenBucket(RetryBudget(capacity=0)))
    sent_keys(denied, [503])
    yield "budget denied", denied
    undecodable = new_call(key)
    undecodable.next_action()
    undecodable.receive_response(201, (), b"not json")
    yield "decode error", undecodable
    expired = new_call(key, deadline=0.0)
    yield "deadline expired", expired
    abandoned = new_call(key)
    abandoned.next_action()
    abandoned.abandon()
    yield "abandoned", abandoned


@pytest.mark.parametrize("key", [None, "caller-key-1"], ids=["auto", "user"])
def test_core_every_post_error_carries_its_key(
    key: str | None, figure: Callable[[str, str], None]
) -> None:
    errors = 0
    lacking: list[str] = []
    for name, call in failing_calls(key):
        outcome = call.next_action()
        assert isinstance(outcome, Failed), (name, outcome)
        error = outcome.error
        assert isinstance(error, KneoError)
        errors += 1
        expected = key if key is not None else call.operation.idempotency_key
        if error.idempotency_key != expected or expected is None:
            lacking.append(name)
        assert error.request_id == call.request_id
    assert lacking == []
    kind = "auto" if key is None else "user"
    figure("T07", f"{errors} POST error endings ({kind} key): 0 lack .idempotency_key")
