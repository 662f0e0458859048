"""Family B, bodies: truncated, misframed, undecodable and oversized responses (T11-T14).

Every case runs on the three flavours (``KneoClient`` on asyncio and on trio, and
``SyncKneoClient``) for GET (``runs.get``), a keyed POST (``runs.create``) and PATCH
(``Transport.request``: the API declares no PATCH endpoint), against a
``ScriptedSocketServer`` on 127.0.0.1. A fault meets either the first attempt only (a safe
retry then succeeds) or every attempt. After every case the pool is back to zero, every
faulted connection is closed, and a follow-up GET on the same client succeeds at once
(``run_case``). Iteration counts are CI counts; ``KNEO_RELIABILITY_SCALE`` multiplies them.
"""

from __future__ import annotations

import functools
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from kneo_proto import (
    KneoAuthError,
    KneoDecodeError,
    KneoError,
    KneoProtocolError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
)
from tests.support.scale import scaled
from tests.support.scripted_server import (
    Fin,
    Script,
    ScriptedSocketServer,
    Seen,
    Send,
    Serve,
    Stream,
    ok_body,
    response_bytes,
    scripted_server,
)
from tests.support.socket_subject import (
    METHODS,
    Flavour,
    Outcome,
    Subject,
    Tally,
    backend_fixture,  # noqa: F401 - a fixture
    check,
    expected,
    flavour_fixture,  # noqa: F401 - a fixture
    run_case,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ITERATIONS = scaled(10)  # per case and method; alternately first attempt only / every attempt
KEEP_ALIVE_CYCLES = scaled(150)
CAP = 256 * 1024  # the client's max_response_bytes in T14 (small, for speed)
READ_SIZE = 64 * 1024  # httpcore2 reads at most this much at a time
JSON = ("Content-Type", "application/json")
Figure = Callable[[str, str], None]


def faulted(iteration: int) -> int:
    """Even iterations fault the first attempt only, odd ones every attempt (3)."""
    return 1 if iteration % 2 == 0 else 3


def head(status: str, *headers: str) -> bytes:
    return "\r\n".join((f"HTTP/1.1 {status}", *headers, "", "")).encode()


def echo(seen: Seen | None) -> str:
    assert seen is not None
    return f"X-Request-ID: {seen.header('x-request-id')}"


# -- T11: truncated bodies ------------------------------------------------------------------


def short_body(seen: Seen | None) -> bytes:
    """``Content-Length: 1000``, then the first 10 bytes of the right answer, then FIN."""
    assert seen is not None
    return head("200 OK", echo(seen), "Content-Length: 1000") + ok_body(seen.method)[:10]


def unterminated_chunks(seen: Seen | None) -> bytes:
    """The whole right answer as one chunk, but no last (zero) chunk before the FIN: a
    client that ignored the framing would return a complete-looking result."""
    assert seen is not None
    body = ok_body(seen.method)
    chunk = b"%x\r\n%b\r\n" % (len(body), body)
    return head("200 OK", echo(seen), "Transfer-Encoding: chunked") + chunk


TRUNCATED: dict[str, Script] = {
    "Content-Length 1000, 10 bytes, FIN": (Send(short_body), Fin()),
    "chunked without its last chunk, FIN": (Send(unterminated_chunks), Fin()),
}


@pytest.mark.plan("T11")
async def test_t11_truncated_body_is_a_protocol_error_never_a_partial_result(
    flavour: Flavour, figure: Figure
) -> None:
    tally = Tally()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for script in TRUNCATED.values():
                for method in METHODS:
                    for i in range(ITERATIONS):
                        await run_case(
                            subject,
                            server,
                            method,
                            script,
                            faulted=faulted(i),
                            error=KneoProtocolError,
                            tally=tally,
                        )
        finally:
            await subject.aclose()
    figure(
        "T11",
        f"{flavour}: {ITERATIONS} truncated bodies x 2 framings x 3 methods: partial results 0, "
        f"leftover connections 0, PATCH retries 0; {tally.summary()}",
    )


# -- T12: wrong Content-Length and response attribution -------------------------------------

FOREIGN_RUN = "run-9999"


def with_leftover(server: ScriptedSocketServer, extra: Callable[[Seen], bytes]) -> Script:
    """The right answer, then ``extra`` in the same segment, on a kept-alive connection."""

    def build(seen: Seen | None) -> bytes:
        assert seen is not None
        return server.answer(seen) + extra(seen)

    return (Send(build), Serve())


def garbage(seen: Seen) -> bytes:
    """Plan T12(a): ``Content-Length: 2`` with 7 body bytes leaves 5 for the next reader."""
    return b"XXXXX"


def foreign_response(seen: Seen) -> bytes:
    """A complete answer to another request (another run, another request ID)."""
    body = ok_body(seen.method, FOREIGN_RUN)
    return response_bytes(200, body, [JSON, ("X-Request-ID", "someone-else")])


def foreign_response_without_echo(seen: Seen) -> bytes:
    return response_bytes(200, ok_body(seen.method, FOREIGN_RUN), [JSON])


@pytest.mark.plan("T12")
async def test_t12_bytes_left_on_a_kept_connection_never_reach_another_call(
    flavour: Flavour, figure: Figure
) -> None:
    """Every 10th answer leaves bytes behind on its kept-alive connection: 5 garbage bytes
    or a whole answer to another request (echoing another request ID). The driver sees the
    bytes h11 holds past the answer (or httpcore2 sees them waiting in the socket) and the
    connection is dropped, so the next call is clean; no call ever returns the other
    answer."""
    leftovers = [garbage, foreign_response]
    poisoned = 0
    after: Counter[str] = Counter()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            previous_poisoned = False
            for cycle in range(KEEP_ALIVE_CYCLES):
                method = METHODS[cycle % len(METHODS)]
                poison = cycle % 10 == 0
                if poison:
                    server.on_request(with_leftover(server, leftovers[poisoned % 2]))
                    poisoned += 1
                outcome = await subject.call(method)
                server.clear()
                if outcome.ok:
                    check(outcome, server, error=None, attempts=outcome.attempts)
                    assert outcome.attempts <= 2, outcome
                else:
                    assert previous_poisoned, outcome
                    assert method == "PATCH"
                    check(outcome, server, error=KneoProtocolError, attempts=1)
                if previous_poisoned:
                    after[_after_poison(outcome)] += 1
                else:
                    assert outcome.ok, outcome
                    assert outcome.attempts == 1, outcome
                previous_poisoned = poison
            assert await subject.settled() == []
        finally:
            await subject.aclose()
    assert sum(after.values()) == poisoned
    assert after == Counter({"clean": poisoned})  # every poisoned connection was dropped
    shown = ", ".join(f"{name} {count}" for name, count in sorted(after.items()))
    figure(
        "T12",
        f"{flavour}: {KEEP_ALIVE_CYCLES} keep-alive cycles, leftover bytes on every 10th "
        f"({poisoned}: garbage or another request's answer): misattributed responses 0; "
        f"the next call: {shown}",
    )


def _after_poison(outcome: Outcome) -> str:
    if not outcome.ok:
        return "PATCH protocol errors"
    return "recovered by a retry" if outcome.attempts > 1 else "clean"


@pytest.mark.plan("T12")
async def test_t12_an_answer_left_on_a_kept_connection_without_an_echo_is_refused(
    flavour: Flavour,
) -> None:
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for _ in range(3):
                server.on_request(with_leftover(server, foreign_response_without_echo))
                check(await subject.call("GET"), server, error=None, attempts=1)
                outcome = await subject.call("GET")
                assert outcome.value != FOREIGN_RUN, "another request's answer was returned"
        finally:
            await subject.aclose()


def conflicting_lengths(seen: Seen | None) -> bytes:
    assert seen is not None
    body = ok_body(seen.method)
    return head("200 OK", echo(seen), f"Content-Length: {len(body)}", "Content-Length: 5") + body


def length_and_chunked(seen: Seen | None) -> bytes:
    """Chunked framing, complete and valid, plus a Content-Length (RFC 9112 section 6.3)."""
    assert seen is not None
    body = ok_body(seen.method)
    chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    headers = (echo(seen), "Content-Length: 5", "Transfer-Encoding: chunked")
    return head("200 OK", *headers) + chunked


MISFRAMED: dict[str, Script] = {
    "two conflicting Content-Lengths": (Send(conflicting_lengths), Fin()),
    "Content-Length with Transfer-Encoding": (Send(length_and_chunked), Serve()),
}


@pytest.mark.plan("T12")
async def test_t12_conflicting_framing_is_a_protocol_error(
    flavour: Flavour, figure: Figure
) -> None:
    tally = Tally()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for script in MISFRAMED.values():
                for method in METHODS:
                    for i in range(ITERATIONS):
                        await run_case(
                            subject,
                            server,
                            method,
                            script,
                            faulted=faulted(i),
                            error=KneoProtocolError,
                            tally=tally,
                        )
        finally:
            await subject.aclose()
    figure(
        "T12",
        f"{flavour}: {ITERATIONS} x 2 conflicting framings (two Content-Lengths; Content-Length "
        f"with Transfer-Encoding) x 3 methods: wrong class 0; {tally.summary()}",
    )


@pytest.mark.plan("T12")
async def test_t12_a_response_with_length_and_chunked_framing_closes_its_connection(
    flavour: Flavour,
) -> None:
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            server.on_request(MISFRAMED["Content-Length with Transfer-Encoding"])
            outcome = await subject.call("PATCH")
            check(outcome, server, error=KneoProtocolError, attempts=1)
            [seen] = server.requests_with(outcome.request_id)
            connection = server.connections[seen.connection]
            assert await anyio.to_thread.run_sync(connection.ended.wait, 1.0)
            assert connection.closed_by == "client"
        finally:
            await subject.aclose()


# -- T13: undecodable and non-JSON bodies: the status decides -------------------------------

HTML_PAGE = b"<html><body>" + b"<p>Bad gateway</p>" * 300 + b"</body></html>"  # ~5 KiB


def bad_body(status: str, body: bytes, *headers: str) -> Callable[[Seen | None], bytes]:
    def build(seen: Seen | None) -> bytes:
        length = f"Content-Length: {len(body)}"
        return head(status, echo(seen), *headers, length) + body

    return build


# name: (answer, the typed class raised, whether the status is retried where safe, body)
BAD_BODIES: dict[str, tuple[Callable[[Seen | None], bytes], type[KneoError], bool, bytes]] = {
    "200 truncated JSON": (
        bad_body("200 OK", b'{"id":', "Content-Type: application/json"),
        KneoDecodeError,
        False,
        b'{"id":',
    ),
    "200 text/html": (
        bad_body("200 OK", HTML_PAGE, "Content-Type: text/html"),
        KneoDecodeError,
        False,
        HTML_PAGE,
    ),
    "502 HTML proxy page": (
        bad_body("502 Bad Gateway", HTML_PAGE, "Content-Type: text/html"),
        KneoServerError,
        True,
        HTML_PAGE,
    ),
    "503 empty body": (
        bad_body("503 Service Unavailable", b""),
        KneoServiceUnavailableError,
        True,
        b"",
    ),
    "429 text/plain, Retry-After 0": (
        bad_body(
            "429 Too Many Requests", b"slow down", "Content-Type: text/plain", "Retry-After: 0"
        ),
        KneoRateLimited,
        True,
        b"slow down",
    ),
    "500 JSON envelope missing fields": (
        bad_body("500 Internal Server Error", b'{"error": {}}', "Content-Type: application/json"),
        KneoServerError,
        False,
        b'{"error": {}}',
    ),
    "401 invalid JSON": (
        bad_body("401 Unauthorized", b'{"error":', "Content-Type: application/json"),
        KneoAuthError,
        False,
        b'{"error":',
    ),
}


@pytest.mark.plan("T13")
async def test_t13_the_status_decides_the_error_whatever_the_body(
    flavour: Flavour, figure: Figure
) -> None:
    """The class and the retry follow the status; a 2xx that does not decode is
    ``KneoDecodeError`` (never retried; the raw PATCH returns the bytes as they came); every
    error carries the request ID the server saw and at most 1 KiB of the body."""
    tally = Tally()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for answer, error, retried, body in BAD_BODIES.values():
                for method in METHODS:
                    for i in range(2):
                        server.on_request(*[(Send(answer), Serve())] * faulted(i))
                        outcome = await subject.call(method)
                        server.clear()
                        if method == "PATCH" and error is KneoDecodeError:
                            check(outcome, server, error=None, attempts=1, value=body)
                        else:
                            safe = retried and method != "PATCH"
                            want, attempts = expected(method, faulted(i), error, retried=safe)
                            check(outcome, server, error=want, attempts=attempts)
                            _check_error_details(outcome, error)
                        tally.add(outcome)
                        assert await subject.settled() == []
                        follow = await subject.follow_up()
                        check(follow, server, error=None, attempts=1)
                        tally.add_follow_up(follow)
        finally:
            await subject.aclose()
    figure(
        "T13",
        f"{flavour}: {len(BAD_BODIES)} bad-body cases x 3 methods x (first attempt, every "
        f"attempt): wrong class 0, foreign exceptions 0, snippets <= 1 KiB; {tally.summary()}",
    )


def _check_error_details(outcome: Outcome, error: type[KneoError]) -> None:
    if outcome.ok:
        return
    raised = outcome.error
    assert isinstance(raised, error)
    assert raised.request_id == outcome.request_id
    assert raised.status is not None
    if isinstance(raised.body, str):
        assert len(raised.body) <= 1024
    assert len(str(raised)) <= 1024
    if isinstance(raised, KneoRateLimited):
        assert raised.retry_after == 0.0


# -- T14: oversized bodies, unasked-for compression, large header sections ------------------

CHUNK = b"x" * 16384


def _endless(length: str) -> Script:
    return (Send(head("200 OK", "Content-Type: application/json", length)), Stream(CHUNK))


OVERSIZED: dict[str, Script] = {
    "endless close-delimited body": _endless("Connection: close"),
    "Content-Length 10 GiB": _endless(f"Content-Length: {10 * 2**30}"),
}


@pytest.mark.plan("T14")
async def test_t14_an_oversized_body_stops_at_the_cap(flavour: Flavour, figure: Figure) -> None:
    """``KneoResponseTooLargeError`` (never retried) once the body passes the client's cap;
    the client reads at most one read past it, its memory grows by less than cap + 2 MiB,
    and the call is over within 2 s."""
    tally = Tally()
    peaks: list[int] = []
    reads: list[int] = []
    took: list[float] = []
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_response_bytes=CAP)
        try:
            for script in OVERSIZED.values():
                for method in METHODS:
                    for i in range(ITERATIONS // 2):
                        traced = i == 0
                        if traced:
                            tracemalloc.start()
                        try:
                            outcome = await run_case(
                                subject,
                                server,
                                method,
                                script,
                                faulted=1,
                                error=KneoResponseTooLargeError,
                                retried=False,
                                tally=tally,
                            )
                        finally:
                            if traced:
                                peaks.append(tracemalloc.get_traced_memory()[1])
                                tracemalloc.stop()
                        reads.append(outcome.bytes_read)
                        took.append(outcome.elapsed)
        finally:
            await subject.aclose()
    assert max(reads) <= CAP + READ_SIZE + 1024
    assert max(peaks) <= CAP + 2 * 2**20
    assert max(took) <= 2.0
    figure(
        "T14",
        f"{flavour}: {len(reads)} oversized bodies (endless, 10 GiB Content-Length) over a "
        f"{CAP // 1024} KiB cap: all KneoResponseTooLargeError at attempt 1; max read "
        f"{max(reads) // 1024} KiB, max traced peak {max(peaks) // 1024} KiB, max "
        f"{max(took) * 1000:.0f} ms; {tally.summary()}",
    )


@functools.cache
def gzip_bomb(layers: int) -> bytes:
    """100 MiB of zeros, gzipped ``layers`` times (about 100 KiB on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(2**20)
    data = b"".join(packer.compress(zeros) for _ in range(100)) + packer.flush()
    for _ in range(layers - 1):
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        data = packer.compress(data) + packer.flush()
    return data


def compressed(layers: int) -> Callable[[Seen | None], bytes]:
    encoding = ", ".join(["gzip"] * layers)
    return bad_body("200 OK", gzip_bomb(layers), f"Content-Encoding: {encoding}")


@pytest.mark.plan("T14")
async def test_t14_unasked_compression_is_never_inflated(flavour: Flavour, figure: Figure) -> None:
    """kneo asks for ``Accept-Encoding: identity``; a gzip bomb (and a chain of six gzip
    layers) sent anyway is not inflated: a typed call fails with ``KneoDecodeError`` at its
    first attempt, the raw PATCH gets the bytes as they came, and memory stays bounded."""
    tally = Tally()
    peaks: list[int] = []
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_response_bytes=CAP)
        try:
            for layers in (1, 6):
                bomb = gzip_bomb(layers)
                for method in METHODS:
                    server.on_request((Send(compressed(layers)), Serve()))
                    tracemalloc.start()
                    try:
                        outcome = await subject.call(method)
                    finally:
                        peaks.append(tracemalloc.get_traced_memory()[1])
                        tracemalloc.stop()
                    server.clear()
                    if method == "PATCH":
                        check(outcome, server, error=None, attempts=1, value=bomb)
                    else:
                        check(outcome, server, error=KneoDecodeError, attempts=1)
                    assert outcome.bytes_read <= len(bomb) + 1024
                    tally.add(outcome)
                    assert await subject.settled() == []
                    follow = await subject.follow_up()
                    check(follow, server, error=None, attempts=1)
                    tally.add_follow_up(follow)
        finally:
            await subject.aclose()
    assert max(peaks) <= CAP + 2 * 2**20
    figure(
        "T14",
        f"{flavour}: gzip bomb (100 MiB of zeros in {len(gzip_bomb(1)) // 1024} KiB) and 6 gzip "
        f"layers x 3 methods: inflated 0, max traced peak {max(peaks) // 1024} KiB; "
        f"{tally.summary()}",
    )


def big_header_section(server: ScriptedSocketServer, size: int) -> Callable[[Seen | None], bytes]:
    """The server's right answer with an ``X-Pad`` header of ``size`` bytes added."""

    def build(seen: Seen | None) -> bytes:
        status, rest = server.answer(seen).split(b"\r\n", 1)
        return status + b"\r\nX-Pad: " + b"a" * size + b"\r\n" + rest

    return build


@pytest.mark.plan("T14")
async def test_t14_a_header_section_past_httpcore2s_limit_is_a_protocol_error(
    flavour: Flavour, figure: Figure
) -> None:
    """httpcore2 lets h11 buffer up to 100 KiB of an *incomplete* event (h11's own default
    is 16 KiB) and reads 64 KiB at a time: a 20 KiB header section is accepted; one of
    100-164 KiB is accepted or refused depending on how its bytes arrive (a head completed
    by the read that crosses 100 KiB passes); one of 200 KiB is always a protocol error,
    retried where safe, its connection dropped."""
    tally = Tally()
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:
            for method in METHODS:
                server.on_request((Send(big_header_section(server, 20 * 1024)), Serve()))
                accepted = await subject.call(method)
                server.clear()
                check(accepted, server, error=None, attempts=1)
                tally.add(accepted)
                for i in range(2):
                    await run_case(
                        subject,
                        server,
                        method,
                        (Send(big_header_section(server, 200 * 1024)), Fin()),
                        faulted=faulted(i),
                        error=KneoProtocolError,
                        tally=tally,
                    )
        finally:
            await subject.aclose()
    figure(
        "T14",
        f"{flavour}: header sections x 3 methods: 20 KiB accepted at attempt 1, 200 KiB "
        f"refused as KneoProtocolError (retried where safe); {tally.summary()}",
    )
