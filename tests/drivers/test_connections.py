"""Family B, connections: refused, reset and closed around the send boundary; stale
keep-alive; attempts counted on both sides (T16, T18, T19).

Decision 1 of the plan: a failure before any byte was sent (connect refused) is retried for
every method; after, only GET and the keyed POST are, always with the same key, never PATCH.
A reset right after the accept is ambiguous from the client's side: if it lands before the
client wrote anything (its connect fails), a PATCH may be retried, and is: the oracle is
that no PATCH is ever *written* twice (the recording network backend counts writes).
"""

from __future__ import annotations

import random
import select
import socket
import threading
from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from kneo_proto import KneoNetworkError, KneoProtocolError, KneoResponseTooLargeError
from tests.drivers.test_response_bodies import MISFRAMED, OVERSIZED, TRUNCATED
from tests.support.scale import scaled
from tests.support.scripted_server import (
    Close,
    Pause,
    Reset,
    Script,
    ScriptedSocketServer,
    Send,
    scripted_server,
)
from tests.support.socket_subject import (
    FAST,
    METHODS,
    RETRIED_AFTER_SEND,
    Classes,
    Flavour,
    Outcome,
    Subject,
    Tally,
    backend_fixture,  # noqa: F401 - a fixture
    check,
    flavour_fixture,  # noqa: F401 - a fixture
    run_case,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ITERATIONS = scaled(10)  # per case and method; alternately first attempt only / every attempt
CYCLES = scaled(30)  # stale keep-alive reuse cycles per method and variant
Figure = Callable[[str, str], None]
# A reset may reach the client as ECONNRESET (a network error) or as an early EOF (a
# protocol error: "server disconnected without sending a response").
BROKEN: Classes = (KneoNetworkError, KneoProtocolError)


def faulted(iteration: int) -> int:
    return 1 if iteration % 2 == 0 else 3


# -- T16(a): connect refused ----------------------------------------------------------------


@pytest.mark.plan("T16")
async def test_t16_a_refused_connect_is_retried_for_every_method(
    flavour: Flavour, figure: Figure
) -> None:
    """The port is bound but not listening (so nothing else can take it): every connect is
    refused, nothing is written, and every method is retried to ``max_attempts``. Then the
    same port starts listening and a follow-up on the same client succeeds."""
    calls = attempts = 0
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        subject = Subject(flavour, url)
        try:
            for method in METHODS:
                for _ in range(ITERATIONS):
                    outcome = await subject.call(method)
                    check(outcome, None, error=KneoNetworkError, attempts=FAST.max_attempts)
                    assert isinstance(outcome.error, KneoNetworkError)
                    assert (outcome.error.kind, outcome.sends) == ("connect", 0)
                    assert subject.pool_problems() == []
                    calls += 1
                    attempts += outcome.attempts
            with scripted_server(listener=bound) as server:
                subject.server = server
                follow = await subject.follow_up()
                check(follow, server, error=None, attempts=1)
        finally:
            await subject.aclose()
    figure(
        "T16",
        f"{flavour}: connect refused x {ITERATIONS} x 3 methods: {calls} calls, {attempts} "
        f"attempts ({FAST.max_attempts} each, every method), 0 bytes written, KneoNetworkError "
        "kind 'connect'; the follow-up once the port listens succeeds",
    )


# -- T16(b)-(e): resets and early closes ----------------------------------------------------


MID_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100


# name: (script, run on accept (before reading), classes raised)
RESETS: dict[str, tuple[Script, bool, Classes]] = {
    "RST right after accept": ((Reset(),), True, BROKEN),
    "RST after the whole request was read": ((Reset(),), False, BROKEN),
    "RST in the middle of the body": ((Send(MID_BODY), Pause(0.005), Reset()), False, BROKEN),
    "FIN with no response": ((Close(),), False, KneoProtocolError),
}


@pytest.mark.plan("T16")
async def test_t16_resets_around_the_send_boundary_follow_the_classification(
    flavour: Flavour, figure: Figure
) -> None:
    """GET and the keyed POST are retried with one key (the server executes the POST once
    and answers every attempt with its run); PATCH is never written twice."""
    tally = Tally()
    patch_retried_unsent = 0
    with scripted_server(keep_alive=False) as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for script, on_accept, error in RESETS.values():
                for method in METHODS:
                    for i in range(ITERATIONS):
                        if on_accept and method == "PATCH":
                            outcome = await patch_reset_on_accept(subject, faulted(i), tally)
                            patch_retried_unsent += outcome.attempts > 1
                            continue
                        await run_case(
                            subject,
                            server,
                            method,
                            script,
                            faulted=faulted(i),
                            error=error,
                            tally=tally,
                            on_accept=on_accept,
                        )
        finally:
            await subject.aclose()
    figure(
        "T16",
        f"{flavour}: {len(RESETS)} reset/close faults x {ITERATIONS} x 3 methods: duplicate "
        f"executions 0, PATCH written twice 0 ({patch_retried_unsent} PATCH retries after a "
        f"reset that came before anything was written); {tally.summary()}",
    )


async def patch_reset_on_accept(subject: Subject, faults: int, tally: Tally) -> Outcome:
    """A PATCH whose first ``faults`` connections are reset as soon as they are accepted."""
    assert subject.server is not None
    subject.server.on_accept(*[(Reset(),)] * faults)
    outcome = await subject.call("PATCH")
    subject.server.clear()
    if outcome.ok:
        check(outcome, subject.server, error=None, attempts=faults + 1)
    else:
        check(outcome, subject.server, error=BROKEN, attempts=outcome.attempts)
    # Written at most once (``check``), and by the last attempt when it succeeded: no
    # retry after a write.
    assert outcome.sends == 1 or not outcome.ok
    tally.add(outcome)
    assert await subject.settled() == []
    follow = await subject.follow_up()
    check(follow, subject.server, error=None, attempts=1)
    tally.add_follow_up(follow)
    return outcome


# -- T18: stale keep-alive ------------------------------------------------------------------


@pytest.mark.plan("T18")
async def test_t18_a_connection_the_server_closed_while_idle_is_not_reused(
    flavour: Flavour, figure: Figure
) -> None:
    """The server closes the pooled connection (FIN) before the next call: once the FIN has
    reached the client, every method, PATCH included, succeeds at its first attempt, on a
    new connection, and nothing is written into the closed one.

    Only what a user and the server can see is checked (the attempts ``.raw`` and the
    Transport report, the connection the server read the request on, the client's writes),
    not how the pool tells a stale connection (httpcore2 2.17 moved that from
    ``has_expired()`` into the send path)."""
    fresh: Counter[str] = Counter()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_connections=1)
        try:
            for method in METHODS:
                for _ in range(CYCLES):
                    first = await subject.call(method)
                    check(first, server, error=None, attempts=1)
                    closed = served_on(server, first)
                    assert await anyio.to_thread.run_sync(server.close_idle, 1, 1.0) == 1
                    assert server.connections[closed].closed_by == "server"
                    await fin_arrived(subject)
                    streams = len(subject.network.streams)
                    outcome = await subject.call(method)
                    check(outcome, server, error=None, attempts=1)
                    assert served_on(server, outcome) > closed, "the closed one was reused"
                    assert (outcome.sends, len(subject.network.streams)) == (1, streams + 1)
                    fresh[method] += 1
            assert await subject.settled() == []
        finally:
            await subject.aclose()
    assert fresh == dict.fromkeys(METHODS, CYCLES)
    figure(
        "T18",
        f"{flavour}: {CYCLES * 3} reuse cycles with the idle connection closed by the server "
        "first (GET, keyed POST, PATCH): user-visible failures 0, all at attempt 1 on a new "
        "connection; leaked connections 0",
    )


def served_on(server: ScriptedSocketServer, outcome: Outcome) -> int:
    """The number of the one server connection that read ``outcome``'s request."""
    seen = server.requests_with(outcome.request_id)
    assert len(seen) == 1, f"{outcome.method}: the server read {len(seen)} attempts"
    return seen[0].connection


async def fin_arrived(subject: Subject) -> None:
    """Wait (at most 1 s) until the client's end of the pooled connection is readable, that
    is, the server's FIN has reached it: from then on a pool can tell the connection is
    stale. ``select`` on the socket itself, so no httpcore2 internals are involved."""
    assert len(subject.pool.connections) == 1
    sock = subject.network.streams[-1].socket
    assert sock is not None, "the network backend did not expose its socket"
    readable = await anyio.to_thread.run_sync(lambda: select.select([sock], [], [], 1.0)[0])
    assert readable, "the FIN never reached the client"


@pytest.mark.plan("T18")
async def test_t18_a_close_racing_the_reuse_fails_only_patch(
    flavour: Flavour, figure: Figure
) -> None:
    """The server closes the idle connection 0-2 ms after the next call starts, racing it:
    GET and the keyed POST always succeed (a stale-connection failure is a post-send error,
    retried); PATCH may surface the ambiguous error, and is never written twice. A request
    written into the closing connection may never reach the server (``lossy``)."""
    rng = random.Random(f"t18:{flavour}")
    results: dict[str, Counter[str]] = {method: Counter() for method in METHODS}
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_connections=1)
        try:
            for method in METHODS:
                for _ in range(CYCLES):
                    check(await subject.call(method), server, error=None, attempts=1)
                    closer = threading.Timer(rng.uniform(0, 0.002), server.close_idle, (1, 0.01))
                    closer.start()
                    outcome = await subject.call(method, lossy=True)
                    await anyio.to_thread.run_sync(closer.join)
                    if outcome.ok or RETRIED_AFTER_SEND[method]:
                        check(outcome, server, error=None, attempts=outcome.attempts, lost=True)
                    else:
                        check(outcome, server, error=BROKEN, attempts=1, lost=True)
                    results[method][_race_result(outcome)] += 1
                    assert await subject.settled() == []
        finally:
            await subject.aclose()
    ambiguous = results["PATCH"]["ambiguous error"]
    shown = "; ".join(
        f"{method} " + ", ".join(f"{k} {v}" for k, v in sorted(results[method].items()))
        for method in METHODS
    )
    figure(
        "T18",
        f"{flavour}: {CYCLES * 3} reuse cycles with the server's close racing the reuse: "
        f"GET/keyed POST failures 0, PATCH ambiguous-error rate {ambiguous}/{CYCLES}; {shown}",
    )


def _race_result(outcome: Outcome) -> str:
    if not outcome.ok:
        return "ambiguous error"
    return "retried" if outcome.attempts > 1 else "first attempt"


# -- T19: attempts seen by the server = attempts the client reports -------------------------


@pytest.mark.plan("T19")
async def test_t19_no_hidden_retries_and_no_unbounded_timeouts(
    flavour: Flavour, figure: Figure
) -> None:
    """A sweep over the family's faults (truncated, misframed, oversized, reset, closed),
    each on its first attempt and on every attempt, for the three methods: the server saw
    exactly the attempts each call reports (no retry below kneo), httpcore was handed no
    None timeout in any phase, and its pool has ``retries=0``."""
    scripts: list[tuple[Script, Classes]] = [
        *((script, KneoProtocolError) for script in TRUNCATED.values()),
        *((script, KneoProtocolError) for script in MISFRAMED.values()),
        *((script, error) for script, on_accept, error in RESETS.values() if not on_accept),
    ]
    tally = Tally()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_response_bytes=256 * 1024)
        try:
            for script, error in scripts:
                for method in METHODS:
                    for faults in (1, 3):
                        await run_case(
                            subject,
                            server,
                            method,
                            script,
                            faulted=faults,
                            error=error,
                            tally=tally,
                        )
            for script in OVERSIZED.values():
                for method in METHODS:
                    too_large = KneoResponseTooLargeError
                    await run_case(
                        subject,
                        server,
                        method,
                        script,
                        faulted=1,
                        error=too_large,
                        retried=False,
                        tally=tally,
                    )
            recorded = dict(subject.network.seen)
            unbounded = sum(subject.network.unbounded.values())
            retries = subject.pool_retries
        finally:
            await subject.aclose()
    assert tally.server_attempts == tally.client_attempts
    assert (unbounded, retries) == (0, 0)
    shown = ", ".join(f"{phase} {count}" for phase, count in sorted(recorded.items()))
    figure(
        "T19",
        f"{flavour}: {tally.calls + tally.follow_ups} calls over the B faults: sum of server "
        f"attempts {tally.server_attempts} - sum of client attempts {tally.client_attempts} "
        f"= 0; None timeouts handed to httpcore 0 (of {shown}); httpcore pool retries 0",
    )
