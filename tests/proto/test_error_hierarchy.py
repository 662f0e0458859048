"""T10: the exception hierarchy contract, against golden files.

- The class tree (each class, its bases, everything it is a subclass of) must equal
  ``golden/error_tree.txt``; a change to it is a reviewed diff (regenerate with
  ``PYTHONPATH=. python -m tests.proto.golden.regenerate``).
- Every status 100-599 and every ``FailureKind`` maps to exactly one class of that tree: the
  class depends on the status, whether the request is keyed and the two idempotency codes,
  never on anything else in the body; and it is the class the T03 golden table records.
- Every error the core builds (each status, each failure kind, deadline, budget denial,
  retries exhausted, wait timeout) carries the plan's attributes and survives a pickle round
  trip with all of them. (``tests/proto/test_errors.py`` checks the same for hand-built
  errors of every class.)
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    FetchStatus,
    KneoError,
    KneoNetworkError,
    KneoUnexpectedRedirectError,
    KneoWaitTimeoutError,
    RetryBudget,
    RetryPolicy,
    RunPoll,
    TokenBucket,
)
from kneo_proto._errors import from_response
from kneo_proto._http import Response
from kneo_proto._operation import raw_operation
from tests.proto.golden.regenerate import (
    CLASSIFICATION_CSV,
    ERROR_TREE,
    IN_PROGRESS,
    MISMATCH,
    error_classes,
    error_tree_text,
)

pytestmark = pytest.mark.plan("T10")

CONFIG = ClientConfig(base_url="https://kneo.test", api_key="errors-key-0123456789")
STATUSES = [s for s in range(100, 600) if not 200 <= s < 300]
# Bodies that must not change the class: only the two idempotency codes may.
NEUTRAL_BODIES = [
    b"",
    b"<html>502 Bad Gateway</html>",
    b'{"error": {"message": "no code"}}',
    b'{"error": {"code": "conflict", "message": "x"}}',
    b'{"code": "rate_limited"}',
    b"[1, 2, 3]",
    b"\xff\xfe not utf-8",
]
ATTRIBUTES = ("status", "request_id", "idempotency_key", "attempts", "retry_after", "elapsed")


@dataclass(frozen=True)
class PolledRun:
    """A polled run: all ``RunPoll`` reads of one."""

    status: str


class Ticker:
    """A monotonic clock that moves 0.25 s per reading, so ``elapsed`` is never zero."""

    def __init__(self) -> None:
        self.now = 0.0

    def read(self) -> float:
        self.now += 0.25
        return self.now

    def clock(self) -> Clock:
        return Clock(monotonic=self.read, wall=lambda: 1_700_000_000.0)


def golden_error_column() -> dict[tuple[str, str, str], str]:
    """(variant, outcome, code) -> error class, from the T03 table (retries off)."""
    with CLASSIFICATION_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        (r["variant"], r["outcome"], r["code"]): r["error"] for r in rows if r["retries"] == "off"
    }


def test_core_error_tree_matches_the_golden_file(figure: Callable[[str, str], None]) -> None:
    assert error_tree_text() == ERROR_TREE.read_text(encoding="utf-8")
    classes = error_classes()
    assert all(cls.__doc__ for cls in classes)
    timeouts = sorted(cls.__name__ for cls in classes if issubclass(cls, TimeoutError))
    figure(
        "T10",
        f"class tree of {len(classes)} classes matches golden/error_tree.txt "
        f"(TimeoutError: {', '.join(timeouts)})",
    )


def test_core_every_status_and_failure_kind_maps_to_exactly_one_class(
    figure: Callable[[str, str], None],
) -> None:
    tree = {cls.__name__ for cls in error_classes()}
    golden = golden_error_column()
    cases = unmapped = 0
    for status in STATUSES:
        for keyed, variant in ((False, "GET"), (True, "POST auto key")):
            key = "k-1" if keyed else None
            found = {
                type(from_response(Response(status, (), body), idempotency_key=key)).__name__
                for body in NEUTRAL_BODIES
            }
            cases += len(NEUTRAL_BODIES)
            assert len(found) == 1, (status, keyed, found)
            (name,) = found
            unmapped += name not in tree
            assert golden[(variant, str(status), "")] == name
            for code in (IN_PROGRESS, MISMATCH):
                if status in (409, 422):
                    assert golden[(variant, str(status), code)] in tree
    for kind in FailureKind:
        names = {golden[(variant, f"transport:{kind.value}", "")] for variant in ("GET", "PATCH")}
        assert len(names) == 1, (kind, names)
        assert names <= tree, (kind, names)
        cases += 1
    assert unmapped == 0
    figure(
        "T10",
        f"{len(STATUSES)} non-2xx statuses x keyed/unkeyed x {len(NEUTRAL_BODIES)} bodies + "
        f"{len(FailureKind)} failure kinds ({cases:,} cases): each maps to exactly one class "
        "of the tree, 0 unmapped",
    )


def built_errors() -> Iterator[tuple[str, KneoError]]:
    """Errors exactly as the core builds them, one per way a call can fail."""

    def failed(call: Call[bytes]) -> KneoError:
        outcome = call.next_action()
        assert isinstance(outcome, Failed), outcome
        return outcome.error

    def new_call(method: str = "POST", **options: Any) -> Call[bytes]:
        budget = options.pop("budget", None)
        return Call(
            raw_operation(method, "/v1/errors"),
            CONFIG,
            clock=Ticker().clock(),
            options=CallOptions(**options),
            budget=budget,
        )

    once = RetryPolicy(max_attempts=1)
    for status in STATUSES:
        call = new_call(retry_policy=once)
        call.next_action()
        headers = [("Retry-After", "7"), ("Location", "/v1/elsewhere")]
        call.receive_response(status, headers, b'{"error": {"code": "c", "message": "m"}}')
        yield f"status {status}", failed(call)
    for kind in FailureKind:
        call = new_call(retry_policy=once)
        call.next_action()
        call.receive_failure(kind, "detail")
        yield f"failure {kind.value}", failed(call)
    call = new_call(deadline=0.1)
    yield "deadline", failed(call)
    call = new_call(budget=TokenBucket(RetryBudget(capacity=0)))
    call.next_action()
    call.receive_response(503, [("Retry-After", "1")], b"")
    yield "budget denied", failed(call)
    ticker = Ticker()
    poll = RunPoll("run-1", clock=ticker.clock(), timeout=0.1)
    assert isinstance(poll.next_action(), FetchStatus)  # the first poll is always made
    poll.receive_status(PolledRun("running"))
    wait = poll.next_action()
    assert isinstance(wait, Failed)
    yield "wait timeout", wait.error


def test_core_built_errors_carry_attributes_and_pickle(figure: Callable[[str, str], None]) -> None:
    built = list(built_errors())
    failures = []
    for name, error in built:
        for attribute in ATTRIBUTES:
            assert hasattr(error, attribute), (name, attribute)
        assert error.elapsed is not None, name
        assert error.elapsed > 0, name
        if not isinstance(error, KneoWaitTimeoutError):
            assert error.request_id, name
            assert error.idempotency_key, name
        copy = pickle.loads(pickle.dumps(error))
        same = (
            type(copy) is type(error)
            and vars(copy) == vars(error)
            and str(copy) == str(error)
            and copy.args == error.args
        )
        if not same:
            failures.append(name)
        if isinstance(error, KneoUnexpectedRedirectError):
            assert copy.location == "/v1/elsewhere"
        if isinstance(error, KneoNetworkError):
            assert copy.kind == error.kind
    exhausted = dict(built)["budget denied"]
    assert exhausted.retry_budget_exhausted
    assert exhausted.retry_after == 1.0
    assert failures == []
    figure("T10", f"{len(built)} core-built errors: 0 missing attributes, 0 pickle failures")
