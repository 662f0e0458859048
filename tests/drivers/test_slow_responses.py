"""Family B, time: a body that stops short, and a slow drip against the deadline (T12b, T15).

Real time on loopback, with short timeouts so the family stays fast: a per-phase (read)
timeout of 250 ms for a body that stops short; for a drip, one byte every 50 ms against a
read timeout of 800 ms (which it never trips) and a call deadline of 1 s. Tolerances are
the plan's, chosen for a busy 2-core machine: 150 ms past the read timeout or the deadline,
for every client (the blocking one cannot interrupt a read, but its network backend keeps
each read within the deadline).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import anyio
import pytest

from kneo_proto import KneoTimeoutError
from tests.support.scale import scaled
from tests.support.scripted_server import (
    GUARD,
    Close,
    Drip,
    Pause,
    Script,
    ScriptedSocketServer,
    Seen,
    Send,
    scripted_server,
)
from tests.support.socket_subject import (
    METHODS,
    RETRIED_AFTER_SEND,
    Flavour,
    Method,
    Outcome,
    Subject,
    Tally,
    backend_fixture,  # noqa: F401 - a fixture
    check,
    flavour_fixture,  # noqa: F401 - a fixture
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

MARGIN = 0.150
Figure = Callable[[str, str], None]


# -- T12(b): Content-Length larger than what comes, then silence ----------------------------

STALL_TIMEOUT = 0.25
STALLS = scaled(4)  # per method


def stalled_body(seen: Seen | None) -> bytes:
    assert seen is not None
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"0123456789"


STALL: Script = (Send(stalled_body), Pause(GUARD))


@pytest.mark.plan("T12")
async def test_t12_a_body_shorter_than_its_length_times_out_within_the_read_timeout(
    flavour: Flavour, figure: Figure
) -> None:
    """The server sends 10 of 1000 body bytes and idles: the read timeout ends the attempt
    with ``KneoTimeoutError`` within 150 ms of it; GET and the keyed POST are then retried
    (and succeed), PATCH is not."""
    tally = Tally()
    took: list[float] = []
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, timeout=STALL_TIMEOUT)
        try:
            for method in METHODS:
                for _ in range(STALLS):
                    server.on_request(STALL)
                    outcome = await subject.call(method)
                    server.clear()
                    if RETRIED_AFTER_SEND[method]:
                        check(outcome, server, error=None, attempts=2)
                    else:
                        check(outcome, server, error=KneoTimeoutError, attempts=1)
                    took.append(outcome.elapsed)
                    tally.add(outcome)
                    assert await subject.settled() == []
                    follow = await subject.follow_up()
                    check(follow, server, error=None, attempts=1)
                    tally.add_follow_up(follow)
        finally:
            await subject.aclose()
    assert min(took) >= STALL_TIMEOUT * 0.95
    assert max(took) <= STALL_TIMEOUT + MARGIN
    late = sum(t > STALL_TIMEOUT + MARGIN for t in took)
    figure(
        "T12",
        f"{flavour}: Content-Length 1000, 10 bytes, then idle, x {STALLS} x 3 methods: time to "
        f"the timeout <= read timeout {STALL_TIMEOUT * 1000:.0f} ms + 150 ms in "
        f"{len(took) - late}/{len(took)} (max {max(took) * 1000:.0f} ms); {tally.summary()}",
    )


# -- T15: slowloris drip against the overall deadline ---------------------------------------

DEADLINE = 1.0
DRIP_TIMEOUT = (
    0.8  # the read timeout: a byte every 50 ms never lets it fire, even on a busy machine
)
DRIP = 0.05
DRIPS = scaled(10)  # per flavour and phase, half GET and half POST, run together


def dripped_head(server: ScriptedSocketServer) -> Script:
    """The first 40 bytes of the answer (status line and headers, 2 s), then FIN."""

    def build(seen: Seen | None) -> bytes:
        return server.answer(seen)[:40]

    return (Drip(build, DRIP), Close())


def dripped_body(server: ScriptedSocketServer) -> Script:
    """The answer's head at once, then its body one byte every 50 ms (about 7 s)."""

    def head(seen: Seen | None) -> bytes:
        return server.answer(seen).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"

    def body(seen: Seen | None) -> bytes:
        return server.answer(seen).split(b"\r\n\r\n", 1)[1]

    return (Send(head), Drip(body, DRIP), Close())


async def drip_runs(
    flavour: Flavour, script: Callable[[ScriptedSocketServer], Script], overrun: float
) -> list[Outcome]:
    """``DRIPS`` calls at once (GET and POST in turn), each on its own dripping connection,
    each with a 1 s deadline; every one must end within ``overrun`` of it, with
    ``KneoTimeoutError`` at its first attempt, its connection discarded."""
    outcomes: list[Outcome] = []
    with scripted_server() as server:
        subject = Subject(
            flavour, server.url, server=server, timeout=DRIP_TIMEOUT, max_connections=DRIPS
        )

        async def one(method: Method) -> None:
            outcomes.append(await subject.call(method, deadline=DEADLINE))

        try:
            server.on_request(*[script(server)] * DRIPS)
            async with anyio.create_task_group() as tasks:
                for n in range(DRIPS):
                    tasks.start_soon(one, METHODS[n % 2])
            for outcome in outcomes:
                assert outcome.elapsed <= DEADLINE + overrun, outcome
                check(outcome, None, error=KneoTimeoutError, attempts=1)
                assert len(server.requests_with(outcome.request_id)) == 1
            assert await subject.settled() == []
            follow = await subject.follow_up()
            check(follow, server, error=None, attempts=1)
        finally:
            await subject.aclose()
    return outcomes


def overshoots(outcomes: list[Outcome]) -> list[float]:
    found = [outcome.elapsed - DEADLINE for outcome in outcomes]
    assert min(found) >= -0.01, "the call ended before its deadline: the drip did not hold"
    assert max(found) < DEADLINE, "a call ran past twice its deadline"
    return found


def report(figure: Figure, flavour: Flavour, phase: str, found: list[float]) -> None:
    figure(
        "T15",
        f"{flavour}: {len(found)} {phase} dripped 1 byte/{DRIP * 1000:.0f} ms (read timeout "
        f"{DRIP_TIMEOUT * 1000:.0f} ms, deadline {DEADLINE * 1000:.0f} ms): KneoTimeoutError at "
        f"attempt 1 in all; overshoot p50 {statistics.median(found) * 1000:.0f} ms, p100 "
        f"{max(found) * 1000:.0f} ms; runs past 2x the deadline 0",
    )


@pytest.mark.plan("T15")
async def test_t15_a_dripped_body_is_cut_at_the_deadline(flavour: Flavour, figure: Figure) -> None:
    # The async clients are cut off at the deadline itself; the blocking one's reads never
    # wait past it.
    found = overshoots(await drip_runs(flavour, dripped_body, MARGIN))
    report(figure, flavour, "bodies", found)


@pytest.mark.plan("T15")
async def test_t15_a_dripped_header_section_is_cut_at_the_deadline(
    flavour: Flavour, figure: Figure
) -> None:
    # The blocking client cannot interrupt a read, but its pool's network backend gives no
    # read longer than what is left of the deadline, so it stops as promptly.
    found = overshoots(await drip_runs(flavour, dripped_head, MARGIN))
    report(figure, flavour, "header sections", found)
