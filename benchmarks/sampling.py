"""Timed samples of calls against the canned server: the machinery every case shares.

A ``Case`` makes one call, or one batch of calls, each time ``one()`` runs. ``measure_sync``
and ``measure_async`` first run every case ``plan.warmup`` times, untimed, checking each
outcome with ``case.expect`` (a wrong one raises ``WrongResult``); then they take the
samples in rounds, every case once per round in a fresh seeded shuffled order, so drift in
the machine's load hits all cases alike. A sample times ``plan.inner`` runs of ``one()``
between reads of ``time.perf_counter_ns`` (wall) and ``time.process_time_ns`` (this
process's CPU: the server runs in another one). The canned server's request count and CPU
time are read before and after each sample, outside the clock: a sample whose calls did not
cost exactly ``calls_per_inner`` requests each (an unexpected retry) raises ``WrongResult``.
The garbage collector stays on, as in a real program, but what is alive after the warm-up is
frozen, so collections scan only what the calls allocate.
"""

from __future__ import annotations

import gc
import http.client
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "AsyncOne",
    "Case",
    "Plan",
    "Result",
    "ServerStats",
    "SyncOne",
    "WrongResult",
    "measure_async",
    "measure_sync",
    "median_p90",
    "p90",
]

F = TypeVar("F")
AsyncOne = Callable[[], Awaitable[object]]
SyncOne = Callable[[], object]


class WrongResult(Exception):
    """A case did not end as it should: the benchmark (or the client) is broken."""


@dataclass(frozen=True, slots=True)
class Plan:
    """``samples`` timed samples of ``inner`` runs each, after ``warmup`` checked runs."""

    samples: int
    inner: int
    warmup: int = 1


@dataclass(frozen=True, slots=True)
class Case(Generic[F]):
    """One measured thing: ``one`` makes ``calls_per_inner`` calls and returns an outcome."""

    backend: str
    call: str
    client: str
    label: str
    one: F
    plan: Plan
    expect: Callable[[object], bool]
    calls_per_inner: int = 1

    @property
    def key(self) -> str:
        """``backend/call/client``: how reports look a result up."""
        return f"{self.backend}/{self.call}/{self.client}"


@dataclass(frozen=True, slots=True)
class Result:
    """One case's figures, in microseconds per call (per request sent)."""

    key: str
    backend: str
    call: str
    client: str
    label: str
    wall_median_us: float
    wall_p90_us: float
    cpu_median_us: float
    cpu_p90_us: float
    server_cpu_us: float
    samples: int
    calls_per_sample: int


@dataclass(slots=True)
class _Samples:
    wall_ns: list[float] = field(default_factory=list)
    cpu_ns: list[float] = field(default_factory=list)
    server_cpu_ns: int = 0
    calls: int = 0


class ServerStats:
    """Reads the canned server's CPU time and request count over a connection of its own."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def read(self) -> tuple[int, int]:
        """``(cpu_ns, requests)`` of the server so far."""
        self._conn.request("GET", "/_canned/stats")
        stats = json.loads(self._conn.getresponse().read())
        return int(stats["cpu_ns"]), int(stats["requests"])

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def p90(values: list[float]) -> float:
    """The 90th percentile (inclusive method); the value itself when there is one."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def median_p90(values: list[float]) -> tuple[float, float]:
    """``(median, p90)`` of ``values``."""
    return statistics.median(values), p90(values)


def _check(case: Case[Any], outcome: object) -> None:
    if not case.expect(outcome):
        raise WrongResult(f"{case.key}: unexpected outcome {outcome!r:.300}")


def _record(
    case: Case[Any], samples: _Samples, ns: tuple[int, int], server: tuple[int, int]
) -> None:
    """Add one sample: ``ns`` is its (wall, CPU) time, ``server`` the server's (CPU, requests)."""
    calls = case.plan.inner * case.calls_per_inner
    if server[1] != calls:
        raise WrongResult(f"{case.key}: {calls} calls made {server[1]} requests")
    samples.wall_ns.append(ns[0] / calls)
    samples.cpu_ns.append(ns[1] / calls)
    samples.server_cpu_ns += server[0]
    samples.calls += calls


def _summarize(case: Case[Any], samples: _Samples) -> Result:
    return Result(
        key=case.key,
        backend=case.backend,
        call=case.call,
        client=case.client,
        label=case.label,
        wall_median_us=statistics.median(samples.wall_ns) / 1000,
        wall_p90_us=p90(samples.wall_ns) / 1000,
        cpu_median_us=statistics.median(samples.cpu_ns) / 1000,
        cpu_p90_us=p90(samples.cpu_ns) / 1000,
        server_cpu_us=samples.server_cpu_ns / max(1, samples.calls) / 1000,
        samples=case.plan.samples,
        calls_per_sample=case.plan.inner * case.calls_per_inner,
    )


class _Sampler(Generic[F]):
    """Hands out the cases to sample, round by round, and keeps their figures.

    Inside its ``with`` block the garbage collector's survivors are frozen, so collections
    scan only the objects the calls allocate.
    """

    def __init__(self, cases: list[Case[F]], stats: ServerStats, seed: int) -> None:
        self._cases, self._stats, self._seed = cases, stats, seed
        self._samples = {case.key: _Samples() for case in cases}

    def __enter__(self) -> _Sampler[F]:
        gc.collect()
        gc.freeze()
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.unfreeze()

    def rounds(self) -> Iterator[Case[F]]:
        """Every case once per round, in a fresh shuffled order each round."""
        rng = random.Random(self._seed)
        for round_ in range(max(c.plan.samples for c in self._cases)):
            for case in rng.sample(self._cases, len(self._cases)):
                if round_ < case.plan.samples:
                    yield case

    @contextmanager
    def timing(self, case: Case[F]) -> Iterator[None]:
        """Time the ``with`` block as one sample of ``case``."""
        before = self._stats.read()
        cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
        yield
        wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
        after = self._stats.read()
        server = (after[0] - before[0], after[1] - before[1])
        _record(case, self._samples[case.key], (wall1 - wall0, cpu1 - cpu0), server)

    def results(self) -> list[Result]:
        """Each case's summary, in the order the cases were given."""
        return [_summarize(case, self._samples[case.key]) for case in self._cases]


def measure_sync(cases: list[Case[SyncOne]], stats: ServerStats, seed: int) -> list[Result]:
    """Warm up and check every case, then take its samples (see the module docstring)."""
    for case in cases:
        for _ in range(max(1, case.plan.warmup)):
            _check(case, case.one())
    with _Sampler(cases, stats, seed) as sampler:
        for case in sampler.rounds():
            one = case.one
            with sampler.timing(case):
                for _ in range(case.plan.inner):
                    one()
    return sampler.results()


async def measure_async(cases: list[Case[AsyncOne]], stats: ServerStats, seed: int) -> list[Result]:
    """``measure_sync`` for cases whose ``one()`` is awaited, in the running event loop."""
    for case in cases:
        for _ in range(max(1, case.plan.warmup)):
            _check(case, await case.one())
    with _Sampler(cases, stats, seed) as sampler:
        for case in sampler.rounds():
            one = case.one
            with sampler.timing(case):
                for _ in range(case.plan.inner):
                    await one()
    return sampler.results()
