"""T06: the retry budget, as a hypothesis state machine over ``Call``s.

The machine shares one ``TokenBucket`` between many calls, each driven step by step: first-try
successes, retryable failures (statuses and transport timeouts), successes after k retries,
and cancellations at every point of a retry (granted but not slept, slept but not sent, sent).
A model of the level (ADR 0005's rules) must match the bucket after every step, the level must
stay within [0, capacity], a first attempt must be sent whatever the level, and a cancelled
retry that was never sent must give its tokens back.

The blocking driver's ``LockedTokenBucket`` under 16 threads is tested in
``tests/drivers/test_locked_budget.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kneo_proto import (
    Call,
    CallOptions,
    CallState,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    Finished,
    RetryBudget,
    RetryPolicy,
    Send,
    Sleep,
    TokenBucket,
)
from kneo_proto._operation import raw_operation
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T06")

CONFIG = ClientConfig(base_url="https://kneo.test", api_key="budget-key-0123456789")
CLOCK = Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)
POLICY = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, jitter=0.0)
EXPLORED = scaled(200)
WALKS = scaled(5_000)
FAILURES = ("503", "429", "timeout", "network")

_stats = {"runs": 0, "steps": 0, "denied": 0, "refunded_unsent": 0}


@dataclass
class Open:
    """A call whose latest attempt failed and whose retry the bucket granted."""

    call: Call[bytes]
    cost: int


def fail_attempt(call: Call[bytes], failure: str) -> None:
    if failure in ("503", "429"):
        call.receive_response(int(failure), (), b'{"error": {"code": "busy"}}')
    else:
        call.receive_failure(FailureKind(failure), "state machine")


class BudgetMachine(RuleBasedStateMachine):
    """Calls sharing one bucket; ``level`` is the model of its tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket = TokenBucket()
        self.level = 0
        self.open: list[Open] = []
        _stats["runs"] += 1

    @initialize(
        capacity=st.sampled_from([0, 5, 20, 100, 500]),
        retry_cost=st.integers(0, 10),
        timeout_cost=st.integers(0, 20),
        refund=st.integers(0, 3),
        percent=st.sampled_from([0, 100]) | st.integers(0, 100),
    )
    def setup(
        self, capacity: int, retry_cost: int, timeout_cost: int, refund: int, percent: int
    ) -> None:
        self.bucket = TokenBucket(RetryBudget(capacity, retry_cost, timeout_cost, refund))
        self.bucket.available = self.level = capacity * percent // 100

    # -- the model ------------------------------------------------------------------------

    def cost(self, failure: str) -> int:
        rules = self.bucket.budget
        return rules.retry_cost if failure in ("503", "429") else rules.timeout_retry_cost

    def add(self, amount: int) -> None:
        self.level = min(self.level + amount, self.bucket.budget.capacity)

    def fail_and_decide(self, call: Call[bytes], failure: str, attempts: int) -> None:
        """Fail the attempt in flight; the call retries iff attempts and tokens allow."""
        cost = self.cost(failure)
        fail_attempt(call, failure)
        if attempts >= POLICY.max_attempts:
            assert call.state is CallState.FAILED
        elif self.level < cost:
            assert call.state is CallState.FAILED
            outcome = call.next_action()
            assert isinstance(outcome, Failed)
            assert outcome.error.retry_budget_exhausted
            _stats["denied"] += 1
        else:
            assert call.state is CallState.BACKING_OFF
            self.level -= cost
            self.open.append(Open(call, cost))

    def new_call(self) -> Call[bytes]:
        call: Call[bytes] = Call(
            raw_operation("GET", "/v1/budget"),
            CONFIG,
            clock=CLOCK,
            options=CallOptions(retry_policy=POLICY),
            budget=self.bucket,
        )
        # A first attempt is never gated, whatever the level (0 included).
        assert isinstance(call.next_action(), Send)
        return call

    def resume(self, index: int) -> Open:
        """Sleep the chosen open call and send its retry."""
        chosen = self.open.pop(index % len(self.open))
        assert isinstance(chosen.call.next_action(), Sleep)
        assert isinstance(chosen.call.next_action(), Send)
        return chosen

    # -- rules ----------------------------------------------------------------------------

    @rule()
    def first_try_success(self) -> None:
        call = self.new_call()
        call.receive_response(200, (), b'{"ok": true}')
        assert isinstance(call.next_action(), Finished)
        self.add(self.bucket.budget.success_refund)

    @rule(failure=st.sampled_from(FAILURES))
    def first_attempt_fails(self, failure: str) -> None:
        self.fail_and_decide(self.new_call(), failure, attempts=1)

    @precondition(lambda self: bool(self.open))
    @rule(index=st.integers(0, 99))
    def retry_succeeds(self, index: int) -> None:
        chosen = self.resume(index)
        chosen.call.receive_response(200, (), b"{}")
        assert isinstance(chosen.call.next_action(), Finished)
        self.add(chosen.cost)  # a success after retries returns what its last retry took

    @precondition(lambda self: bool(self.open))
    @rule(index=st.integers(0, 99), failure=st.sampled_from(FAILURES))
    def retry_fails(self, index: int, failure: str) -> None:
        chosen = self.resume(index)
        self.fail_and_decide(chosen.call, failure, attempts=chosen.call.attempts)

    @precondition(lambda self: bool(self.open))
    @rule(index=st.integers(0, 99), slept=st.booleans())
    def cancel_unsent_retry(self, index: int, slept: bool) -> None:
        chosen = self.open.pop(index % len(self.open))
        if slept:
            assert isinstance(chosen.call.next_action(), Sleep)
        chosen.call.abandon()
        self.add(chosen.cost)  # granted but never sent: the tokens come back
        _stats["refunded_unsent"] += 1

    @precondition(lambda self: bool(self.open))
    @rule(index=st.integers(0, 99))
    def cancel_in_flight(self, index: int) -> None:
        chosen = self.resume(index)
        chosen.call.abandon()  # sent: the tokens stay spent

    @invariant()
    def level_is_in_range_and_modelled(self) -> None:
        _stats["steps"] += 1
        assert 0 <= self.bucket.available <= self.bucket.budget.capacity
        assert self.bucket.available == self.level


def random_walk(rng: random.Random, steps: int = 20) -> None:
    """Run the machine's rules in a seeded random order (cheap, for volume)."""
    machine = BudgetMachine()
    machine.setup(
        capacity=rng.choice([0, 5, 20, 100, 500]),
        retry_cost=rng.randint(0, 10),
        timeout_cost=rng.randint(0, 20),
        refund=rng.randint(0, 3),
        percent=rng.choice([0, 100, rng.randint(0, 100)]),
    )
    machine.level_is_in_range_and_modelled()
    for _ in range(steps):
        index, failure = rng.randrange(100), rng.choice(FAILURES)
        choices: list[Callable[[], None]] = [
            machine.first_try_success,
            partial(machine.first_attempt_fails, failure),
        ]
        if machine.open:
            choices += [
                partial(machine.retry_succeeds, index),
                partial(machine.retry_fails, index, failure),
                partial(machine.cancel_unsent_retry, index, rng.random() < 0.5),
                partial(machine.cancel_in_flight, index),
            ]
        rng.choice(choices)()
        machine.level_is_in_range_and_modelled()


def test_core_budget_state_machine(figure: Callable[[str, str], None]) -> None:
    """hypothesis explores (and would shrink) the rule sequences; a seeded random walk over
    the same rules adds volume at a fraction of hypothesis's cost per step."""
    run_state_machine_as_test(
        BudgetMachine,
        settings=settings(
            max_examples=EXPLORED,
            stateful_step_count=20,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    explored = dict(_stats)
    rng = random.Random(2026)
    for _ in range(WALKS):
        random_walk(rng)
    assert _stats["refunded_unsent"] > explored["refunded_unsent"] > 0
    assert _stats["denied"] > 0
    figure(
        "T06",
        f"state machine: {explored['runs']:,} hypothesis runs + {WALKS:,} seeded random walks "
        f"(20 steps each), {_stats['steps']:,} checked steps, {_stats['denied']:,} denied "
        f"retries (each failing at once, no sleep), {_stats['refunded_unsent']:,} unsent "
        "retries refunded; 0 out-of-range levels, 0 model mismatches, 0 gated first attempts",
    )
