"""T04: backoff and jitter distribution, on the generator clients really use.

``RetryPolicy.delay_for(n + 1)`` (the wait before attempt n + 1, that is after the n-th
failure) is documented as a uniform draw from ``[d * (1 - jitter), d * (1 + jitter)]`` with
``d = min(base_delay * 2 ** (n - 1), max_delay)``. ``tests/proto/test_call_properties.py``
checks that interval with an explicit seeded generator; here every draw comes from the
default one (``rng=None``, what a ``Call`` built by a session uses), so the checks cover the
generator clients share: bounds and uniformity over 10,000 draws per n = 1..6, no
correlation between two clients' delays, and independence from the global ``random`` state,
both in two fresh interpreters and in two processes forked from one parent.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    RetryPolicy,
    Send,
    Sleep,
    endpoints,
)
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T04")

DRAWS = scaled(10_000)
PAIRS = scaled(10_000)
SEQUENCE = 200
POLICIES = [
    RetryPolicy(),  # the default: 0.2 s doubling to 30 s, +/-10 %
    RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=1.0),  # full spread, capped at n = 4
]
ROOT = Path(__file__).resolve().parents[2]

# Prints delays drawn through ``Call`` after the user seeds the global generator; with
# ``fork`` it forks two children first (as a pre-forking server does) and each child
# reseeds and prints its own. Each line is one process's JSON list.
CHILD_SCRIPT = """
import json, os, random, sys
from kneo_proto import Call, CallOptions, ClientConfig, Clock, RetryPolicy, endpoints

def delays(count):
    config = ClientConfig(base_url="https://kneo.test", api_key="k" * 24)
    clock = Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)
    policy = RetryPolicy(base_delay=1.0, jitter=1.0)
    found = []
    for _ in range(count):
        call = Call(endpoints.get_run("r1"), config, clock=clock,
                    options=CallOptions(retry_policy=policy))
        call.next_action()
        call.receive_response(503, (), b"")
        found.append(call.next_action().seconds)
    return found

count, mode = int(sys.argv[1]), sys.argv[2]
if mode == "plain":
    random.seed(0)
    print(json.dumps(delays(count)))
else:
    delays(3)  # the parent uses its generator before forking
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            random.seed(0)
            os.write(write, json.dumps(delays(count)).encode())
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    for pid, read in children:
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.waitpid(pid, 0)
        print(b"".join(chunks).decode())
"""


def bounds(policy: RetryPolicy, n: int) -> tuple[float, float]:
    d = min(policy.base_delay * 2.0 ** (n - 1), policy.max_delay)
    return d * (1 - policy.jitter), d * (1 + policy.jitter)


def bin_counts(values: list[float], lo: float, hi: float, bins: int = 10) -> list[int]:
    counts = Counter(min(int((v - lo) / (hi - lo) * bins), bins - 1) for v in values)
    return [counts[i] for i in range(bins)]


def first_retry_delay(config: ClientConfig, clock: Clock, policy: RetryPolicy) -> float:
    call = Call(
        endpoints.get_run("r1"), config, clock=clock, options=CallOptions(retry_policy=policy)
    )
    assert isinstance(call.next_action(), Send)
    call.receive_response(503, (), b"")
    sleep = call.next_action()
    assert isinstance(sleep, Sleep)
    return sleep.seconds


def child_sequences(mode: str) -> list[list[float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = 2 if mode == "plain" else 1
    found: list[list[float]] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT, str(SEQUENCE), mode],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=True,
        )
        found += [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(found) == 2
    return found


@pytest.mark.parametrize("policy", POLICIES, ids=["default", "full-spread"])
def test_core_jitter_stays_in_bounds_and_is_uniform(
    policy: RetryPolicy, figure: Callable[[str, str], None]
) -> None:
    violations = 0
    worst = 0.0
    for n in range(1, 7):
        lo, hi = bounds(policy, n)
        delays = [policy.delay_for(n + 1) for _ in range(DRAWS)]
        tolerance = 1e-12 * max(hi, 1.0)
        violations += sum(1 for d in delays if not lo - tolerance <= d <= hi + tolerance)
        assert max(delays) <= policy.max_delay * (1 + policy.jitter) + tolerance
        counts = bin_counts(delays, lo, hi)
        expected = DRAWS / 10
        worst = max(worst, *(abs(c - expected) / expected for c in counts))
    assert violations == 0
    assert worst <= 0.20
    figure(
        "T04",
        f"{policy.base_delay:g} s base, jitter {policy.jitter:g}: {DRAWS:,} draws x n=1..6 on "
        f"the default generator, 0 bound violations, worst histogram bin {worst:+.1%} "
        "of uniform (limit 20 %)",
    )


def test_core_two_clients_jitter_is_uncorrelated(figure: Callable[[str, str], None]) -> None:
    clock = Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)
    first = ClientConfig(base_url="https://a.kneo.test", api_key="k" * 24)
    second = ClientConfig(base_url="https://b.kneo.test", api_key="k" * 24)
    policy = RetryPolicy(base_delay=1.0, jitter=1.0)
    pairs = [
        (first_retry_delay(first, clock, policy), first_retry_delay(second, clock, policy))
        for _ in range(PAIRS)
    ]
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    r = statistics.correlation(a, b)
    assert abs(r) < 0.05
    assert sum(1 for x, y in pairs if x == y) == 0
    figure("T04", f"two clients, {PAIRS:,} paired first-retry delays: r = {r:+.4f} (|r| < 0.05)")


@pytest.mark.parametrize("mode", ["plain", "fork"])
def test_core_jitter_ignores_the_global_seed_across_processes(
    mode: str, figure: Callable[[str, str], None]
) -> None:
    """``plain``: two fresh interpreters each call ``random.seed(0)``; ``fork``: one parent
    forks two children (as a pre-forking server does) and each calls ``random.seed(0)``.
    Either way their jitter must differ: a shared sequence would make clients in those
    processes retry in lockstep."""
    one, two = child_sequences(mode)
    assert len(one) == len(two) == SEQUENCE
    identical = int(one == two)
    same_positions = sum(1 for x, y in zip(one, two, strict=True) if x == y)
    assert identical == 0
    assert same_positions == 0
    figure(
        "T04",
        f"random.seed(0) in two {'forked' if mode == 'fork' else 'fresh'} processes: "
        f"{identical} identical sequences, {same_positions}/{SEQUENCE} equal delays",
    )


def test_core_call_jitter_uses_no_global_random_state() -> None:
    """Seeding the global generator twice must not reproduce the delays of ``Call``s."""
    config = ClientConfig(base_url="https://kneo.test", api_key="k" * 24)
    clock = Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)
    policy = RetryPolicy(base_delay=1.0, jitter=1.0)
    random.seed(0)
    first = [first_retry_delay(config, clock, policy) for _ in range(50)]
    random.seed(0)
    second = [first_retry_delay(config, clock, policy) for _ in range(50)]
    assert first != second
    assert all(0.0 <= d <= 2.0 for d in first + second)
