"""The whole suite in one run: one canned server, every client, every case, one ``Figures``.

Order: the generated client is made (if its generator is installed), the canned server is
started in a child process, then each backend in turn (asyncio, trio, blocking) opens its
clients once and runs its cases: sequential calls, calls in flight (async backends), the
paged walk, the polling wait; start-up comes last, in fresh processes. Every phase of a
backend must finish within ``PHASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, closing
from dataclasses import dataclass, field

import anyio

from benchmarks import calls, paging, polling
from benchmarks.canned_server import serve_canned
from benchmarks.generated_client import Generated, generated_client, unavailable_reason
from benchmarks.paging import Peak
from benchmarks.peers import HAVE_HTTPX, open_async, open_sync
from benchmarks.sampling import Plan, Result, ServerStats, measure_async, measure_sync
from benchmarks.startup import Startup, measure_startup

__all__ = ["DEFAULT", "QUICK", "Figures", "Plans", "run_suite"]

PHASE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Plans:
    """How much of each case to run."""

    small: Plan  # runs.get, sequential
    page: Plan  # one 1000-event page, sequential
    in_flight: Plan  # batches of calls in flight
    in_flight_batch: int  # calls per batch (about)
    walk: Plan  # walks over the audit log
    walk_events: int  # events per walk
    wait: Plan  # wait_for_completion
    polls: int  # "running" answers before "completed"
    startup_runs: int


DEFAULT = Plans(
    small=Plan(60, 30, warmup=20),
    page=Plan(60, 2, warmup=2),
    in_flight=Plan(10, 1),
    in_flight_batch=256,
    walk=Plan(4, 1),
    walk_events=100_000,
    wait=Plan(20, 1, warmup=2),
    polls=50,
    startup_runs=9,
)
QUICK = Plans(
    small=Plan(2, 5, warmup=2),
    page=Plan(2, 1),
    in_flight=Plan(1, 1),
    in_flight_batch=256,
    walk=Plan(1, 1),
    walk_events=3_000,
    wait=Plan(2, 1),
    polls=5,
    startup_runs=1,
)


@dataclass(slots=True)
class Figures:
    """Everything one run measured, and what it could not."""

    plans: Plans
    results: list[Result] = field(default_factory=list)
    peaks: list[Peak] = field(default_factory=list)
    page_bytes: int = 0
    startup: Startup | None = None
    generated: Generated | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def _run_async(backend: str, url: str, figures: Figures) -> None:
    plans = figures.plans
    with closing(ServerStats(url)) as stats, anyio.fail_after(PHASE_SECONDS):
        async with AsyncExitStack() as stack:
            rig = await open_async(url, stack, figures.generated)
            sequential = calls.sequential_cases(backend, rig.peers, plans.small, plans.page)
            figures.results += await measure_async(sequential, stats, 11)
            in_flight = calls.concurrent_cases(
                backend, rig.peers, plans.in_flight, plans.in_flight_batch
            )
            figures.results += await measure_async(in_flight, stats, 13)
            walks = paging.walk_cases_async(backend, rig, plans.walk_events, plans.walk)
            figures.results += await measure_async(walks, stats, 17)
            figures.peaks += await paging.peaks_async(walks)
            waits = polling.wait_cases_async(backend, rig, plans.polls, plans.wait)
            figures.results += await measure_async(waits, stats, 19)


def _run_blocking(url: str, figures: Figures) -> None:
    plans = figures.plans
    with closing(ServerStats(url)) as stats, ExitStack() as stack:
        rig = open_sync(url, stack, figures.generated)
        sequential = calls.sequential_cases("blocking", rig.peers, plans.small, plans.page)
        figures.results += measure_sync(sequential, stats, 23)
        walks = paging.walk_cases_sync(rig, plans.walk_events, plans.walk)
        figures.results += measure_sync(walks, stats, 29)
        figures.peaks += paging.peaks_sync(walks)
        figures.page_bytes = paging.decoded_page_bytes(rig)
        waits = polling.wait_cases_sync(rig, plans.polls, plans.wait)
        figures.results += measure_sync(waits, stats, 31)


@contextlib.contextmanager
def _generated(notes: list[str]) -> Iterator[Generated | None]:
    reason = unavailable_reason()
    if reason is not None:
        notes.append(f"The generated client was not measured: {reason}.")
        yield None
        return
    with generated_client() as generated:
        if generated.missing:
            notes.append(f"Operations not generated: {', '.join(generated.missing)}.")
        if generated.warnings:
            notes.append(f"openapi-python-client said: {generated.warnings[:1000]}")
        yield generated


def run_suite(plans: Plans) -> Figures:
    """Run every case once with ``plans``; raises ``WrongResult`` when a case goes wrong."""
    started = time.perf_counter()
    figures = Figures(plans)
    if not HAVE_HTTPX:
        figures.notes.append("httpx was not measured: it is not installed.")
    with _generated(figures.notes) as generated, serve_canned(3 * PHASE_SECONDS) as server:
        figures.generated = generated
        for backend in ("asyncio", "trio"):
            anyio.run(_run_async, backend, server.url, figures, backend=backend)
        _run_blocking(server.url, figures)
        figures.startup = measure_startup(server.url, plans.startup_runs)
    figures.seconds = time.perf_counter() - started
    return figures
