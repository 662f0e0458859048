"""T06: the retry budget shared by threads: the blocking client's ``LockedTokenBucket``.

16 threads hammer one bucket for about a second: every thread only puts back what it took,
so any lost update shows as a level other than the capacity at the end. (The budget's rules,
as a hypothesis state machine over ``Call``s, are tested in ``tests/proto/test_retry_budget.py``.)
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable

import pytest

from kneo_drivers.blocking import LockedTokenBucket
from kneo_proto import RetryBudget
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T06")

THREADS = 16
HAMMER_SECONDS = 1.0
MIN_OPS = 100_000


def hammer(
    bucket: LockedTokenBucket, seed: int, stop: threading.Event, progress: list[int]
) -> None:
    """Withdraw and deposit at random; put back what is held; publish ops and bad readings."""
    rng = random.Random(seed)
    capacity = bucket.budget.capacity
    held: list[int] = []
    ops = bad = 0
    while not stop.is_set():
        for _ in range(100):
            if held and rng.random() < 0.5:
                bucket.deposit(held.pop())
            else:
                cost = rng.choice((1, 5, 10))
                if bucket.withdraw(cost):
                    held.append(cost)
            level = bucket.available
            bad += not 0 <= level <= capacity
            ops += 1
        progress[2 * seed] = ops  # one slot per thread: a plain store, no lock needed
    for amount in held:
        bucket.deposit(amount)
    progress[2 * seed + 1] = bad


def test_core_locked_bucket_under_16_threads(figure: Callable[[str, str], None]) -> None:
    """About a second of contention (longer on a loaded machine, until 100k operations)."""
    bucket = LockedTokenBucket(RetryBudget(capacity=200))
    stop = threading.Event()
    progress = [0] * (2 * THREADS)
    threads = [
        threading.Thread(target=hammer, args=(bucket, seed, stop, progress))
        for seed in range(THREADS)
    ]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so that races have a chance
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        time.sleep(HAMMER_SECONDS * min(scaled(1), 10))
        while sum(progress[::2]) < MIN_OPS and time.monotonic() - started < 10:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(interval)
    seconds = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    ops = sum(progress[::2])
    assert sum(progress[1::2]) == 0, "a reading was out of range"
    assert bucket.available == bucket.budget.capacity, "an update was lost"
    assert ops >= MIN_OPS
    figure(
        "T06",
        f"{THREADS} threads on LockedTokenBucket for {seconds:.1f} s: {ops:,} operations, "
        "0 out-of-range readings, 0 leaked tokens",
    )
