"""T31: pagination under faults and inconsistent servers.

A page server (a plain handler, lean enough to serve 10,000 items per walk) answers
``GET /v1/runs`` by ``limit``/``offset``. Through ``client.platform.runs.iter_all`` on the
blocking client and the async one (asyncio, trio), on the in-memory drivers in virtual time:

- 10,000 items over 100 pages, with about 5 % of page requests answered 503 (never more than
  two in a row, so each page's retries succeed): every item is yielded exactly once, in order;
- a server that returns an empty page while its ``total`` promises more raises
  ``KneoPaginationError`` (it would otherwise loop or stop silently);
- a server that ignores ``offset`` (returns page 0 again) raises ``KneoPaginationError``
  instead of yielding duplicates forever;
- breaking out of the iteration after 150 items, over a real loopback socket and a
  caller-owned connection pool, leaves nothing behind: no request active or queued in the
  pool, no connection in use, no further page fetched, the retry budget full, and the
  client still usable.
"""

from __future__ import annotations

import gc
import random
import re
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.lowlevel
import httpcore2
import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import KneoPaginationError, Request, Response
from tests.loopback import serve
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T31")

T = TypeVar("T")
ITEMS = scaled(10_000)
PAGE = 100
FAULT_RATE = 0.05
API_KEY = "kneo-paging-key-0123456789"
MEMORY_URL = "https://paging.test"
TIMESTAMP = "2025-01-01T00:00:00Z"
IDLE_POOL = re.compile(r"Requests: 0 active, 0 queued \| Connections: 0 active")


class PageServer:
    """Serves ``count`` runs as pages; optionally faulty (503s) or inconsistent."""

    def __init__(self, count: int, *, fault_rate: float = 0.0, bug: str | None = None) -> None:
        self.items = [
            msgspec.json.encode(
                {
                    "run_id": f"run-{n:06d}",
                    "spec_id": "s",
                    "status": "completed",
                    "environment": "dev",
                    "created_at": TIMESTAMP,
                    "updated_at": TIMESTAMP,
                }
            )
            for n in range(count)
        ]
        self.fault_rate = fault_rate
        self.bug = bug
        self.rng = random.Random(31)
        self.in_a_row = 0
        self.faults = 0
        self.offsets: list[int] = []

    def __call__(self, request: Request) -> Response:
        url = urlsplit(request.url)
        assert request.method == "GET", request
        assert url.path == "/v1/runs", request
        query = parse_qs(url.query)
        limit, offset = int(query["limit"][0]), int(query["offset"][0])
        self.offsets.append(offset)
        if self.in_a_row < 2 and self.rng.random() < self.fault_rate:
            self.in_a_row += 1
            self.faults += 1
            return Response(503, (("Content-Type", "application/json"),), b"{}")
        self.in_a_row = 0
        if self.bug == "ignores offset":
            offset = 0
        page = self.items[offset : offset + limit]
        if self.bug == "empty page" and offset >= 3 * PAGE:
            page = []
        head = b'{"runs":[' + b",".join(page) + b"],"
        tail = {
            "count": len(page),
            "total": len(self.items),
            "limit": limit,
            "offset": offset,
            "sort_by": "created_at",
            "sort_order": "asc",
        }
        body = head + msgspec.json.encode(tail)[1:]
        return Response(200, (("Content-Type", "application/json"),), body)


def profile(url: str = MEMORY_URL) -> Profile:
    return Profile(name="paging", url=url, api_key=API_KEY)


def check_every_item_once(server: PageServer, ids: list[str]) -> None:
    assert ids == [f"run-{n:06d}" for n in range(ITEMS)]
    assert max(Counter(ids).values()) == 1
    assert sorted(set(server.offsets)) == list(range(0, ITEMS, PAGE))
    assert server.faults >= ITEMS // PAGE * FAULT_RATE / 2
    assert len(server.offsets) == ITEMS // PAGE + server.faults


def test_time_pages_under_503s_blocking(figure: Callable[[str, str], None]) -> None:
    server = PageServer(ITEMS, fault_rate=FAULT_RATE)
    with SyncKneoClient(profile(), driver=MemoryDriver(server)) as client:
        ids = [run.run_id for run in client.platform.runs.iter_all(limit=PAGE)]
    check_every_item_once(server, ids)
    figure(
        "T31",
        f"blocking: {ITEMS:,} items over {ITEMS // PAGE} pages, {server.faults} injected 503s "
        f"({len(server.offsets)} page requests): every item exactly once, in order",
    )


@pytest.mark.anyio
async def test_time_pages_under_503s_async(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    server = PageServer(ITEMS, fault_rate=FAULT_RATE)
    with anyio.fail_after(60):
        async with KneoClient(profile(), driver=AsyncMemoryDriver(server)) as client:
            ids = [run.run_id async for run in client.platform.runs.iter_all(limit=PAGE)]
    check_every_item_once(server, ids)
    figure(
        "T31",
        f"{anyio_backend}: {ITEMS:,} items over {ITEMS // PAGE} pages, {server.faults} injected "
        f"503s ({len(server.offsets)} page requests): every item exactly once, in order",
    )


@pytest.mark.parametrize("bug", ["empty page", "ignores offset"])
def test_time_inconsistent_pages_raise_blocking(bug: str) -> None:
    server = PageServer(1_000, bug=bug)
    seen: list[str] = []
    with (
        SyncKneoClient(profile(), driver=MemoryDriver(server)) as client,
        pytest.raises(KneoPaginationError),
    ):
        seen.extend(run.run_id for run in client.platform.runs.iter_all(limit=PAGE))
    assert len(seen) == len(set(seen)) <= 3 * PAGE
    assert len(server.offsets) <= 4


def closing(runs: AsyncIterator[T]) -> aclosing[AsyncGenerator[T, None]]:
    """``aclosing`` for ``iter_all``, typed ``AsyncIterator`` though it is a generator."""
    return aclosing(cast(AsyncGenerator[T, None], runs))


async def drain(runs: AsyncIterator[Any], seen: list[str]) -> None:
    async with closing(runs) as pages:
        async for run in pages:
            seen.append(run.run_id)


@pytest.mark.anyio
@pytest.mark.parametrize("bug", ["empty page", "ignores offset"])
async def test_time_inconsistent_pages_raise_async(anyio_backend: str, bug: str) -> None:
    server = PageServer(1_000, bug=bug)
    seen: list[str] = []
    with anyio.fail_after(30):
        async with KneoClient(profile(), driver=AsyncMemoryDriver(server)) as client:
            with pytest.raises(KneoPaginationError):
                await drain(client.platform.runs.iter_all(limit=PAGE), seen)
    assert len(seen) == len(set(seen)) <= 3 * PAGE
    assert len(server.offsets) <= 4


def check_released(pool: Any, server: PageServer, budget: Any) -> None:
    assert IDLE_POOL.search(repr(pool)), repr(pool)
    assert server.offsets == [0, PAGE], "no page may be fetched beyond the one in use"
    assert budget is not None
    assert budget.available == budget.budget.capacity


def test_time_breaking_out_releases_everything_blocking(figure: Callable[[str, str], None]) -> None:
    server = PageServer(1_000)
    with serve(server) as url, httpcore2.ConnectionPool(retries=0) as pool:
        with SyncKneoClient(profile(url), http_client=pool) as client:
            for index, _ in enumerate(client.platform.runs.iter_all(limit=PAGE)):
                if index == int(1.5 * PAGE) - 1:
                    break
            check_released(pool, server, client.retry_budget)
            assert len(list(client.platform.runs.iter_all(limit=500))) == 1_000
        figure("T31", f"blocking, break after 150 items over loopback: pool {pool!r}")


@pytest.mark.anyio
async def test_time_breaking_out_releases_everything_async(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    server = PageServer(1_000)
    with serve(server) as url, anyio.fail_after(30):
        async with (
            httpcore2.AsyncConnectionPool(retries=0) as pool,
            KneoClient(profile(url), http_client=pool) as client,
        ):
            async with closing(client.platform.runs.iter_all(limit=PAGE)) as runs:
                index = 0
                async for _ in runs:
                    index += 1
                    if index == int(1.5 * PAGE):
                        break
            check_released(pool, server, client.retry_budget)
            later = [run.run_id async for run in client.platform.runs.iter_all(limit=500)]
            assert len(later) == 1_000
            figure("T31", f"{anyio_backend}, break after 150 items over loopback: pool {pool!r}")


@pytest.mark.anyio
async def test_time_plain_break_leaves_no_unclosed_generator(anyio_backend: str) -> None:
    """The plain ``async for ... break`` (no ``aclosing``) a user is likely to write.

    On trio, an async generator left suspended warns when collected; ``iter_all`` is an
    async iterator class, so there is nothing to collect.
    """
    server = PageServer(1_000)
    with anyio.fail_after(30):
        async with KneoClient(profile(), driver=AsyncMemoryDriver(server)) as client:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                index = 0
                async for _ in client.platform.runs.iter_all(limit=PAGE):
                    index += 1
                    if index == int(1.5 * PAGE):
                        break
                gc.collect()
                await anyio.lowlevel.checkpoint()
    assert server.offsets == [0, PAGE]
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
