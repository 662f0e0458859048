"""Cases 1 to 3: one call after another, and many calls in flight on a pool of 20.

Sequential: each peer's ``runs.get`` (0.5 KB) and page (1000 events, 300 KB), one call
after another on a warm keep-alive connection (``runs.get`` alone for the kneo-client peers
with observers, whose ``page`` is None). In flight: ``n`` workers started at once in
a task group, each making its share of a batch of ``runs.get`` calls one after another, so
that ``n`` calls stay in flight until the batch ends; with ``n`` above the pool's 20
connections the surplus waits for a connection (in kneo-client, at its gate; in the raw
pool, in httpcore's queue). Every result is checked to be a completed run.
"""

from __future__ import annotations

from functools import partial
from typing import TypeVar

import anyio

from benchmarks.peers import RAW_JSON, Peer, is_page, is_run
from benchmarks.sampling import AsyncOne, Case, Plan

__all__ = ["GET", "IN_FLIGHT", "PAGE", "concurrent_cases", "in_flight", "sequential_cases"]

F = TypeVar("F")
GET, PAGE = "runs.get", "audit.list"
IN_FLIGHT = (20, 256)


def in_flight(n: int) -> str:
    """The ``call`` name of the case with ``n`` calls in flight."""
    return f"{n} in flight"


def sequential_cases(backend: str, peers: list[Peer[F]], small: Plan, page: Plan) -> list[Case[F]]:
    """A ``runs.get`` case for every peer, and a page case for every peer with a page."""
    cases: list[Case[F]] = []
    for peer in peers:
        cases.append(Case(backend, GET, peer.client, peer.label, peer.get, small, is_run))
        if peer.page is not None:
            cases.append(Case(backend, PAGE, peer.client, peer.label, peer.page, page, is_page))
    return cases


async def _batch(get: AsyncOne, workers: int, calls_each: int) -> bool:
    wrong = 0

    async def worker() -> None:
        nonlocal wrong
        for _ in range(calls_each):
            if not is_run(await get()):
                wrong += 1

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)
    return wrong == 0


def _all_right(outcome: object) -> bool:
    return outcome is True


def concurrent_cases(
    backend: str, peers: list[Peer[AsyncOne]], plan: Plan, batch: int
) -> list[Case[AsyncOne]]:
    """For each peer (but httpcore2+json, the same pool as +msgspec, and the peers measured
    on ``runs.get`` alone) and each ``IN_FLIGHT`` ``n``: batches of about ``batch``
    ``runs.get`` calls, ``n`` at a time.
    """
    cases: list[Case[AsyncOne]] = []
    for peer in peers:
        if peer.client == RAW_JSON or peer.page is None:
            continue
        for n in IN_FLIGHT:
            calls_each = max(1, round(batch / n))
            one = partial(_batch, peer.get, n, calls_each)
            cases.append(
                Case(
                    backend,
                    in_flight(n),
                    peer.client,
                    peer.label,
                    one,
                    plan,
                    _all_right,
                    n * calls_each,
                )
            )
    return cases
