"""Compute the golden tables from the core, and write them when run as a module.

``retry_classification.csv`` (plan T03) holds one row per method variant x retries on/off x
attempt outcome (every status 100-599, the 409/422 idempotency codes, every ``FailureKind``):
whether the core retries after that outcome on attempt 1 with an ample budget and deadline,
and the class of the error the outcome produces when it ends the call. ``error_tree.txt``
(plan T10) holds the error class tree: each class, its direct bases and every class it is a
subclass of.

The tests recompute both and compare them with the checked-in files; a diff is a change to
review. After an intentional change, regenerate with::

    PYTHONPATH=. python -m tests.proto.golden.regenerate
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kneo_client
import kneo_proto
from kneo_proto import (
    Call,
    CallOptions,
    CallState,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    Finished,
    KneoError,
    Operation,
    RetryPolicy,
    Send,
    Sleep,
    TokenBucket,
)
from kneo_proto._operation import raw_operation

__all__ = [
    "CLASSIFICATION_CSV",
    "ERROR_TREE",
    "IN_PROGRESS",
    "MISMATCH",
    "OUTCOMES",
    "VARIANTS",
    "Outcome",
    "Row",
    "Variant",
    "classification_csv",
    "classification_rows",
    "error_classes",
    "error_tree_text",
    "main",
]

GOLDEN = Path(__file__).parent
CLASSIFICATION_CSV = GOLDEN / "retry_classification.csv"
ERROR_TREE = GOLDEN / "error_tree.txt"

IN_PROGRESS = "idempotency_key_in_progress"
MISMATCH = "idempotency_key_mismatch"
USER_KEY = "golden-user-key/1 ~x"
HEADER = ("variant", "retries", "outcome", "code", "decision", "error")

_CONFIG = ClientConfig(base_url="https://kneo.test", api_key="golden-key-0123456789")
_CLOCK = Clock(monotonic=lambda: 1000.0, wall=lambda: 1_700_000_000.0)
# Ample: far more time and tokens than one retry needs, so only the classification decides.
_DEADLINE = 600.0
_RETRIES = {"on": RetryPolicy(max_attempts=3), "off": RetryPolicy(max_attempts=1)}


@dataclass(frozen=True)
class Variant:
    """A method variant: how a logical call is made."""

    name: str
    method: str
    idempotency_key: str | None = None
    unkeyed_post: bool = False

    def operation(self) -> Operation[bytes]:
        op = raw_operation(self.method, "/v1/golden", idempotency_key=self.idempotency_key)
        # Every POST the builders make carries a key; the unkeyed POST pins the rule anyway.
        return dataclasses.replace(op, idempotency_key=None) if self.unkeyed_post else op


VARIANTS: tuple[Variant, ...] = (
    Variant("GET", "GET"),
    Variant("HEAD", "HEAD"),
    Variant("PUT", "PUT"),
    Variant("DELETE", "DELETE"),
    Variant("PATCH", "PATCH"),
    Variant("POST auto key", "POST"),
    Variant("POST user key", "POST", idempotency_key=USER_KEY),
    Variant("POST no key", "POST", unkeyed_post=True),
)


@dataclass(frozen=True)
class Outcome:
    """What attempt 1 gets: a status (with an error code in its body) or a transport failure."""

    status: int | None = None
    code: str = ""
    failure: FailureKind | None = None

    @property
    def label(self) -> str:
        return str(self.status) if self.failure is None else f"transport:{self.failure.value}"

    def body(self) -> bytes:
        assert self.status is not None
        if 200 <= self.status < 300:
            return b"{}"
        if self.code:
            return b'{"error": {"code": "%s", "message": "golden"}}' % self.code.encode()
        return b'{"error": {"message": "golden"}}'


def _outcomes() -> Iterator[Outcome]:
    for status in range(100, 600):
        yield Outcome(status)
        if status in (409, 422):
            yield Outcome(status, IN_PROGRESS)
            yield Outcome(status, MISMATCH)
    for kind in FailureKind:
        yield Outcome(failure=kind)


OUTCOMES: tuple[Outcome, ...] = tuple(_outcomes())


@dataclass(frozen=True)
class Row:
    """One row of the classification table."""

    variant: str
    retries: str
    outcome: str
    code: str
    decision: str
    error: str

    def cells(self) -> tuple[str, ...]:
        return (self.variant, self.retries, self.outcome, self.code, self.decision, self.error)


def _first_attempt(operation: Operation[bytes], retries: str, outcome: Outcome) -> Call[bytes]:
    """A call whose first attempt got ``outcome``, with an ample budget and deadline."""
    call = Call(
        operation,
        _CONFIG,
        clock=_CLOCK,
        options=CallOptions(deadline=_DEADLINE, retry_policy=_RETRIES[retries]),
        budget=TokenBucket(),
        rng=random.Random(0),
    )
    assert isinstance(call.next_action(), Send)
    if outcome.failure is not None:
        call.receive_failure(outcome.failure, "golden")
    else:
        assert outcome.status is not None
        call.receive_response(outcome.status, (), outcome.body())
    return call


def _ending(call: Call[bytes]) -> str:
    """The class name of the error that ended ``call``, or ``-`` for a success."""
    action = call.next_action()
    if isinstance(action, Finished):
        return "-"
    assert isinstance(action, Failed), action
    return type(action.error).__name__


def _decide(variant: Variant, retries: str, outcome: Outcome) -> Row:
    operation = variant.operation()
    call = _first_attempt(operation, retries, outcome)
    if call.state is CallState.BACKING_OFF:
        assert isinstance(call.next_action(), Sleep)
        decision = "retry"
        # The same outcome with retries off: the error it raises once retries run out.
        error = _ending(_first_attempt(operation, "off", outcome))
    else:
        decision = "stop"
        error = _ending(call)
    return Row(variant.name, retries, outcome.label, outcome.code, decision, error)


def classification_rows() -> list[Row]:
    """Every row of the table, as the core decides it now."""
    return [
        _decide(variant, retries, outcome)
        for variant in VARIANTS
        for retries in _RETRIES
        for outcome in OUTCOMES
    ]


def classification_csv(rows: list[Row]) -> str:
    """``rows`` as the golden CSV's text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(row.cells() for row in rows)
    return out.getvalue()


# Builtin classes whose ``except`` clauses users rely on (``except ValueError``, ...).
_BUILTINS: tuple[type[BaseException], ...] = (
    Exception,
    ValueError,
    RuntimeError,
    TimeoutError,
    OSError,
)


def error_classes() -> list[type[KneoError]]:
    """Every ``KneoError`` subclass the three packages define, by name."""
    assert kneo_client
    assert kneo_proto
    found: set[type[KneoError]] = set()
    pending: list[type[KneoError]] = [KneoError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] in ("kneo_proto", "kneo_drivers", "kneo_client"):
            found.add(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


def error_tree_text() -> str:
    """The class tree: ``Name(bases) < every class it is a subclass of``, one line each."""
    classes = error_classes()
    lines = []
    for cls in classes:
        bases = ", ".join(base.__name__ for base in cls.__bases__)
        above = sorted(
            other.__name__
            for other in (*classes, *_BUILTINS)
            if other is not cls and issubclass(cls, other)
        )
        lines.append(f"{cls.__name__}({bases}) < {', '.join(above)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write both golden files from the core as it is now."""
    CLASSIFICATION_CSV.write_text(classification_csv(classification_rows()), encoding="utf-8")
    ERROR_TREE.write_text(error_tree_text(), encoding="utf-8")
    print(f"wrote {CLASSIFICATION_CSV} and {ERROR_TREE}")


if __name__ == "__main__":
    main()
