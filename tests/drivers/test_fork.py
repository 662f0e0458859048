"""Family B, processes: a client used on both sides of ``os.fork()`` (issue 11).

A client that made a call, then ``os.fork()``: the child used to send its requests on the
parent's pooled TCP connection, and with both calling at once the answers crossed processes.
Now a driver that built its pool forgets the inherited connections in the child at the fork
(their descriptors closed in the child only: nothing is sent on the parent's connections)
and starts a fresh pool; over a caller's pool or httpx client, which it cannot replace, it
refuses every call in the child before anything is sent.

The parent calls from an event loop (the blocking client from its worker thread) running in
a thread of its own, which outlives the fork, so its connection is the same before and
after; the child calls from a new loop. The server answers each GET with the run the path
names and no ``X-Request-ID``, so only the marker tells the answers apart, and it records
which connection carried each request: parent and child never share one, no answer crosses,
and the parent's calls stay on its connection.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from kneo_drivers._transport import httpcore
from kneo_drivers.blocking import LockedTokenBucket
from kneo_proto import KneoError, KneoUsageError
from tests.support.flavoured import Client, close, get, make, run
from tests.support.scripted_server import (
    RUN_ID,
    Seen,
    Send,
    Serve,
    ok_body,
    response_bytes,
    scripted_server,
)
from tests.support.socket_subject import FLAVOURS, Flavour

pytestmark = [pytest.mark.timeout(90)]

Figure = Callable[[str, str], None]
Work = Callable[[Client], Awaitable[Any]]
CALLS = 30  # per process, after the fork
LIMIT = 30.0  # seconds either side may take


def marker_answer(seen: Seen | None) -> bytes:
    """The run the GET's path names, without ``X-Request-ID``."""
    assert seen is not None
    run_id = seen.target.rsplit("/", 1)[1]
    return response_bytes(200, ok_body("GET", run_id), [("Content-Type", "application/json")])


ECHO = (Send(marker_answer), Serve())


def calls(prefix: str) -> Work:
    """``CALLS`` GETs, each naming its own marker: ``[marker, answer, attempts]`` each."""

    async def work(client: Client) -> list[list[Any]]:
        found: list[list[Any]] = []
        for n in range(CALLS):
            marker = f"{prefix}-{n:03d}"
            try:
                got = await get(client, marker)
                found.append([marker, got.parsed.run_id, got.attempts])
            except KneoError as exc:
                found.append([marker, repr(exc), exc.attempts])
        return found

    return work


def fork_during(flavour: Flavour, client: Client, before: Work, after: Work, child: Work) -> Any:
    """The parent runs ``before`` on an event loop in a thread; then the main thread forks;
    the child runs ``child`` in a new loop while the parent's loop runs ``after``, both
    starting at once. Returns ``(after's result, child's result)``; the child's crosses a
    pipe as JSON."""
    warmed, go = threading.Event(), threading.Event()
    parent: list[Any] = []

    async def parent_body() -> Any:
        await before(client)
        warmed.set()
        await anyio.to_thread.run_sync(go.wait, LIMIT)
        return await after(client)

    def in_thread() -> None:
        try:
            parent.append(run(flavour, parent_body))
        except BaseException as exc:  # reported in the main thread
            parent.append(exc)
            warmed.set()

    thread = threading.Thread(target=in_thread, name=f"parent-{flavour}")
    thread.start()
    assert warmed.wait(LIMIT)
    pid, start, results = spawn(lambda: run(flavour, child, client))
    os.write(start, b"g")
    go.set()
    thread.join(LIMIT)
    assert not thread.is_alive(), "the parent's calls hung"
    child_found = collect(pid, results)
    os.close(start)
    if isinstance(parent[0], BaseException):
        raise parent[0]
    return parent[0], child_found


def spawn(work: Callable[[], Any]) -> tuple[int, int, int]:
    """Fork a child that waits for a byte on a pipe, runs ``work`` and writes its result
    (JSON) to another pipe, then leaves with ``os._exit``. Returns (pid, start, results)."""
    start_read, start_write = os.pipe()
    results_read, results_write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock the child:
        # the child here takes no lock another thread could hold, and exits with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(start_write)
            os.close(results_read)
            os.read(start_read, 1)
            payload = json.dumps(work()).encode()
            status = 0
        except BaseException as exc:
            payload = json.dumps({"child raised": repr(exc)}).encode()
        finally:
            view = memoryview(payload)
            while view:
                view = view[os.write(results_write, view) :]
            os._exit(status)
    os.close(start_read)
    os.close(results_write)
    return pid, start_write, results_read


def collect(pid: int, results: int) -> Any:
    """The child's result, read within ``LIMIT``; the child reaped (killed if it hangs)."""
    until = time.monotonic() + LIMIT
    chunks: list[bytes] = []
    try:
        while (left := until - time.monotonic()) > 0:
            if select.select([results], [], [], left)[0]:
                chunk = os.read(results, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        done, status = 0, 0
        while done == 0 and time.monotonic() < until + 5.0:
            done, status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.01)
    finally:
        os.close(results)
    if done == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    found = json.loads(b"".join(chunks) or b"null")
    assert os.waitstatus_to_exitcode(status) == 0, found
    return found


async def warm(client: Client) -> None:
    assert (await get(client, "warm")).attempts == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_after_fork_parent_and_child_never_share_a_connection(
    flavour: Flavour, figure: Figure
) -> None:
    with scripted_server() as server:
        server.on_request(*[ECHO] * (1 + 2 * CALLS))
        client = make(flavour, server.url)
        parent, child = fork_during(flavour, client, warm, calls("parent"), calls("child"))
        run(flavour, close, client)
        carried = {r.target.rsplit("/", 1)[1]: r.connection for r in server.requests}
    crossed = [found for found in parent + child if found[0] != found[1]]
    assert crossed == [], crossed
    assert [found[2] for found in parent + child] == [1] * (2 * CALLS)
    assert len(carried) == 1 + 2 * CALLS
    by_parent = {carried[marker] for marker, _, _ in parent}
    by_child = {carried[marker] for marker, _, _ in child}
    assert by_parent == {carried["warm"]}, "the parent left its connection"
    assert by_parent.isdisjoint(by_child), (by_parent, by_child)
    figure(
        "I11",
        f"fork, {flavour}: {CALLS} calls in each process at once after the fork: connections "
        f"parent {len(by_parent)} (its own from before the fork), child {len(by_child)}, "
        f"shared 0; crossed answers 0 (the server sends no X-Request-ID)",
    )


def callers_client(kind: str) -> tuple[Flavour, Any]:
    """A caller-owned pool or httpx client for the flavour that takes it."""
    if kind == "httpcore2.ConnectionPool":
        return "blocking", httpcore.ConnectionPool()
    if kind == "httpx.Client":
        return "blocking", httpx.Client()
    if kind == "httpcore2.AsyncConnectionPool":
        return "asyncio", httpcore.AsyncConnectionPool()
    return "trio", httpx.AsyncClient()


async def refused_in_child(client: Client) -> list[Any]:
    try:
        await get(client, RUN_ID)
    except KneoUsageError as exc:
        return [type(exc).__name__, str(exc), exc.attempts]
    return ["not refused"]


@pytest.mark.parametrize(
    "kind",
    [
        "httpcore2.ConnectionPool",
        "httpx.Client",
        "httpcore2.AsyncConnectionPool",
        "httpx.AsyncClient",
    ],
)
def test_after_fork_a_callers_http_client_is_refused_in_the_child_before_sending(
    kind: str,
) -> None:
    """The caller's pool cannot be replaced: the child's call raises ``KneoUsageError``
    and the server sees nothing from it; the parent's calls go on."""
    flavour, http_client = callers_client(kind)

    async def parent_after(client: Client) -> int:
        attempts = (await get(client, RUN_ID)).attempts
        await close(client)
        if isinstance(http_client, httpx.Client | httpcore.ConnectionPool):
            http_client.close()
        else:
            await http_client.aclose()
        return attempts

    with scripted_server() as server:
        client = make(flavour, server.url, http_client=http_client)
        parent, child = fork_during(flavour, client, warm, parent_after, refused_in_child)
        assert child[0] == "KneoUsageError", child
        assert "os.fork()" in child[1]
        assert child[2] == 0
        assert parent == 1
        assert server.attempts == 2  # the parent's two; nothing from the child


def test_after_fork_a_retry_budget_lock_held_by_another_thread_is_renewed() -> None:
    """A thread of the parent holds the blocking client's retry-budget lock at the fork: the
    child's copy of the lock would stay held forever, so the child gets a new one."""
    bucket = make("blocking", "http://127.0.0.1:9").retry_budget
    assert isinstance(bucket, LockedTokenBucket)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with bucket._lock:
            held.set()
            release.wait(LIMIT)

    holder = threading.Thread(target=hold, name="budget-holder")
    holder.start()
    try:
        assert held.wait(LIMIT)
        pid, start, results = spawn(lambda: bucket.withdraw(1))
        os.write(start, b"g")
        assert collect(pid, results) is True
        os.close(start)
    finally:
        release.set()
        holder.join(LIMIT)
