"""T03: the retry classification golden table.

Every method variant x retries on/off x attempt-1 outcome (each status 100-599, the 409 and
422 idempotency codes, each ``FailureKind``) is run through a fresh ``Call`` with an ample
budget and deadline; the row says whether the call produces another Sleep/Send ("retry") or
ends ("stop"), and which error class the outcome produces. The rows must equal the checked-in
``golden/retry_classification.csv`` (regenerate after a reviewed change with
``PYTHONPATH=. python -m tests.proto.golden.regenerate``).

The table is also checked against the plan's rule, restated here independently of the code:
a row is retryable iff retries are on and it is a pre-send failure (any method), or it is one
of {429, 502, 503, 504, post-send transport error, 409 in progress} on an idempotent verb or a
keyed POST. Where the project's documented decisions (ADR 0005, ``kneo_proto/_retry.py``,
``FailureKind``'s docstring) differ from the plan, the difference is listed in
``DOCUMENTED_DIFFERENCES`` and must account for every row where the plan's rule and the code
disagree:

- ``TLS``: the plan counts a failed TLS handshake as pre-send and so retryable for every
  method; the project never retries it (``KneoTLSError``: "not retried"), since a certificate
  or handshake failure repeats identically.
- ``TOO_LARGE``: a body over the size cap is a post-send failure for the plan's rule; the
  project never retries it, since the same request returns the same oversized body.
- 500 is not retryable in either (the contract's ``RETRYABLE_STATUS_CODES``); OPTIONS, also
  idempotent in the code, is not among the plan's variants.

The row count is variants x retries x (statuses + codes + failure kinds) = 8 x 2 x 511: an
attempt ends with a status or with a transport failure, never both, so the two are one axis
(the plan's "about 40k" multiplied them).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable

import pytest

from kneo_proto import FailureKind
from tests.proto.golden.regenerate import (
    CLASSIFICATION_CSV,
    HEADER,
    IN_PROGRESS,
    OUTCOMES,
    VARIANTS,
    Row,
    classification_csv,
    classification_rows,
)

pytestmark = pytest.mark.plan("T03")

PRE_SEND = frozenset({FailureKind.CONNECT.value, FailureKind.CONNECT_TIMEOUT.value})
POST_SEND = frozenset(
    {
        FailureKind.TIMEOUT.value,
        FailureKind.NETWORK.value,
        FailureKind.PROTOCOL.value,
        FailureKind.TLS.value,
        FailureKind.TOO_LARGE.value,
    }
)
RETRYABLE_STATUSES = frozenset({"429", "502", "503", "504"})
IDEMPOTENT_VARIANTS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
KEYED_VARIANTS = frozenset({"POST auto key", "POST user key"})
# The plan's view of the failure kinds it names differently (see the module docstring).
PLAN_PRE_SEND = PRE_SEND | {FailureKind.TLS.value}

# Failure kinds the project never retries although the plan's rule would: kind -> why.
DOCUMENTED_DIFFERENCES: dict[str, str] = {
    FailureKind.TLS.value: "ADR 0005 / KneoTLSError: a TLS failure is never retried",
    FailureKind.TOO_LARGE.value: "ADR 0005: an over-cap body is never retried",
}


def failure_of(row: Row) -> str | None:
    return row.outcome.removeprefix("transport:") if row.outcome.startswith("transport:") else None


def plan_rule(row: Row) -> bool:
    """The plan's T03 rule, as the plan states it."""
    if row.retries == "off":
        return False
    failure = failure_of(row)
    if failure in PLAN_PRE_SEND:
        return True
    safe = row.variant in IDEMPOTENT_VARIANTS or row.variant in KEYED_VARIANTS
    trigger = (
        failure in POST_SEND
        or row.outcome in RETRYABLE_STATUSES
        or (row.outcome == "409" and row.code == IN_PROGRESS)
    )
    return trigger and safe


def project_rule(row: Row) -> bool:
    """The plan's rule with the project's documented differences applied."""
    return plan_rule(row) and failure_of(row) not in DOCUMENTED_DIFFERENCES


def outcome_class(row: Row) -> str:
    failure = failure_of(row)
    if failure is not None:
        return "pre-send" if failure in PRE_SEND else "post-send"
    if row.outcome == "409":
        return "409-in-progress"
    return row.outcome


def read_golden() -> list[Row]:
    with CLASSIFICATION_CSV.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == HEADER
        return [Row(*cells) for cells in reader]


def count(rows: list[Row], wanted: Callable[[Row], bool]) -> int:
    return sum(1 for row in rows if wanted(row))


def test_core_classification_matches_the_golden_table(figure: Callable[[str, str], None]) -> None:
    computed = classification_rows()
    golden = read_golden()
    assert len(VARIANTS) == 8
    assert len(OUTCOMES) == 500 + 4 + len(FailureKind)
    assert len(computed) == len(VARIANTS) * 2 * len(OUTCOMES) == len(golden)

    mismatches = [(c, g) for c, g in zip(computed, golden, strict=True) if c != g]
    assert not mismatches, f"{len(mismatches)} rows differ from the golden file: {mismatches[:5]}"
    assert classification_csv(computed) == CLASSIFICATION_CSV.read_text(encoding="utf-8")

    rule_mismatches = [row for row in computed if (row.decision == "retry") != project_rule(row)]
    assert not rule_mismatches, rule_mismatches[:5]
    explained = [row for row in computed if plan_rule(row) != project_rule(row)]
    assert explained, "the documented differences must show in the table"
    assert {failure_of(row) for row in explained} == set(DOCUMENTED_DIFFERENCES)

    retryable = Counter(outcome_class(row) for row in computed if row.decision == "retry")
    per_class = ", ".join(f"{name} {n}" for name, n in sorted(retryable.items()))
    figure(
        "T03",
        f"{len(computed):,} rows, 0 mismatches vs golden, 0 vs the plan's rule "
        f"({len(explained)} rows differ by the documented TLS/TOO_LARGE decisions); "
        f"retryable {sum(retryable.values())}: {per_class}",
    )


def test_core_classification_never_retries_with_retries_off_or_unsafe_post_send() -> None:
    rows = classification_rows()

    assert count(rows, lambda r: r.retries == "off" and r.decision == "retry") == 0
    unsafe = {"PATCH", "POST no key"}
    post_send_retries = count(
        rows,
        lambda r: r.variant in unsafe and r.decision == "retry" and failure_of(r) not in PRE_SEND,
    )
    assert post_send_retries == 0
    # 4xx other than 409-in-progress and 429 is never retried, whatever the method.
    assert (
        count(
            rows,
            lambda r: (
                r.outcome.startswith("4")
                and r.decision == "retry"
                and r.outcome != "429"
                and not (r.outcome == "409" and r.code == IN_PROGRESS)
            ),
        )
        == 0
    )
    # A pre-send failure is retried for every variant when retries are on.
    pre_send = [r for r in rows if failure_of(r) in PRE_SEND and r.retries == "on"]
    assert len(pre_send) == 2 * len(VARIANTS)
    assert {r.decision for r in pre_send} == {"retry"}
