"""Case 4: walking the canned audit log through kneo-client's typed auto-pagination.

``audit.iter_all(limit=1000, offset=...)`` yields every event of the last ``events`` of the
log (all 100,000 in a full run: 100 pages of 1000), one page fetched at a time; the loop
keeps only a count and the last event, as a consumer that streams them would. Beside it,
the floor: the same pages through a raw httpcore2 pool and ``msgspec``, in a plain loop.
A walk is timed as a sample (per page, times the pages); its memory is measured apart,
once, because tracing every allocation slows the walk down several times: the peak of
``tracemalloc`` above what was allocated before the walk began. ``decoded_page_bytes``
gives the yardstick: the ``tracemalloc`` peak of decoding one 1000-event page.
"""

from __future__ import annotations

import gc
import math
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from benchmarks.canned_server import AUDIT_TOTAL, audit_event_id
from benchmarks.peers import (
    KNEO,
    PAGE_DECODER,
    PAGE_EVENTS,
    RAW_EXTENSIONS,
    RAW_HEADERS,
    RAW_MSGSPEC,
    AsyncRig,
    SyncRig,
)
from benchmarks.sampling import AsyncOne, Case, Plan, SyncOne, WrongResult

__all__ = [
    "WALK",
    "Peak",
    "decoded_page_bytes",
    "peaks_async",
    "peaks_sync",
    "walk_cases_async",
    "walk_cases_sync",
]

F = TypeVar("F")
WALK = "iter_all"
Outcome = tuple[int, str]  # events seen, ID of the last one


@dataclass(frozen=True, slots=True)
class Peak:
    """The ``tracemalloc`` peak of one walk over ``pages`` pages, in bytes."""

    backend: str
    client: str
    label: str
    pages: int
    peak_bytes: int


def _page_url(url: str, offset: int) -> str:
    query = f"limit={PAGE_EVENTS}&offset={offset}&sort_by=timestamp&sort_order=desc"
    return f"{url}/v1/audit-events?{query}"


def decoded_page_bytes(rig: SyncRig) -> int:
    """The ``tracemalloc`` peak of decoding one 1000-event page (its body excluded)."""
    url = _page_url(rig.url, 0)
    body = rig.pool.request("GET", url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS).content
    peaks = []
    for _ in range(3):
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            page = PAGE_DECODER.decode(body)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            del page
        finally:
            tracemalloc.stop()
    return sorted(peaks)[1]


def _traced(run: Callable[[], object]) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        outcome = run()
        return outcome, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def _traced_async(run: Callable[[], Awaitable[object]]) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        outcome = await run()
        return outcome, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class _Tally:
    """What the floor's page loop keeps between pages: events seen, the last one's ID."""

    __slots__ = ("count", "last_id")

    def __init__(self) -> None:
        self.count = 0
        self.last_id = ""

    def take(self, body: bytes) -> int | None:
        """Decode a page and walk its events; the next page's offset, None after the last.

        The decoded page is dropped on return, before the next one is fetched.
        """
        page = PAGE_DECODER.decode(body)
        count, last = self.count, None
        for event in page.events:
            count, last = count + 1, event
        self.count = count
        if last is not None:
            self.last_id = last.event_id
        offset, count, total = page.offset or 0, page.count or 0, page.total or 0
        end = offset + count
        return None if count == 0 or end >= total else end


def _expect(events: int) -> Callable[[object], bool]:
    wanted: Outcome = (events, audit_event_id(AUDIT_TOTAL - 1))
    return lambda outcome: outcome == wanted


def _cases(backend: str, walks: dict[str, tuple[str, F]], plan: Plan, events: int) -> list[Case[F]]:
    pages = math.ceil(events / PAGE_EVENTS)
    return [
        Case(backend, WALK, client, label, one, plan, _expect(events), pages)
        for client, (label, one) in walks.items()
    ]


def _peak(case: Case[Any], outcome: object, peak: int) -> Peak:
    if not case.expect(outcome):
        raise WrongResult(f"{case.key}: unexpected outcome {outcome!r:.300}")
    return Peak(case.backend, case.client, case.label, case.calls_per_inner, peak)


def walk_cases_sync(rig: SyncRig, events: int, plan: Plan) -> list[Case[SyncOne]]:
    """kneo-client's blocking walk over the last ``events`` events, and the raw floor's."""
    start = AUDIT_TOTAL - events

    def kneo_walk() -> Outcome:
        count, last = 0, None
        for event in rig.kneo.platform.audit.iter_all(limit=PAGE_EVENTS, offset=start):
            count, last = count + 1, event
        return count, "" if last is None else last.event_id

    def raw_walk() -> Outcome:
        tally = _Tally()
        offset: int | None = start
        while offset is not None:
            url = _page_url(rig.url, offset)
            response = rig.pool.request("GET", url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS)
            offset = tally.take(response.content)
        return tally.count, tally.last_id

    walks: dict[str, tuple[str, SyncOne]] = {
        KNEO: ("SyncKneoClient, audit.iter_all", kneo_walk),
        RAW_MSGSPEC: ("httpcore2 ConnectionPool + msgspec, page loop", raw_walk),
    }
    return _cases("blocking", walks, plan, events)


def walk_cases_async(backend: str, rig: AsyncRig, events: int, plan: Plan) -> list[Case[AsyncOne]]:
    """``walk_cases_sync`` for ``KneoClient`` and an async raw pool."""
    start = AUDIT_TOTAL - events

    async def kneo_walk() -> Outcome:
        count, last = 0, None
        async for event in rig.kneo.platform.audit.iter_all(limit=PAGE_EVENTS, offset=start):
            count, last = count + 1, event
        return count, "" if last is None else last.event_id

    async def raw_walk() -> Outcome:
        tally = _Tally()
        offset: int | None = start
        while offset is not None:
            url = _page_url(rig.url, offset)
            response = await rig.pool.request(
                "GET", url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS
            )
            offset = tally.take(response.content)
        return tally.count, tally.last_id

    walks: dict[str, tuple[str, AsyncOne]] = {
        KNEO: ("KneoClient, audit.iter_all", kneo_walk),
        RAW_MSGSPEC: ("httpcore2 AsyncConnectionPool + msgspec, page loop", raw_walk),
    }
    return _cases(backend, walks, plan, events)


def peaks_sync(cases: list[Case[SyncOne]]) -> list[Peak]:
    """One traced walk per case: its memory peak (its outcome checked too)."""
    return [_peak(case, *_traced(case.one)) for case in cases]


async def peaks_async(cases: list[Case[AsyncOne]]) -> list[Peak]:
    """``peaks_sync`` in the running event loop."""
    return [_peak(case, *(await _traced_async(case.one))) for case in cases]
