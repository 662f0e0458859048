"""Family B, protocol garbage: a corpus of byte-level responses (T17).

Each entry is the server's reply to one attempt, and what it must become:
- ``PROTOCOL``: ``KneoProtocolError``, a post-send failure: GET meets it on every attempt
  (3 attempts, then the error), the keyed POST on its first only (retried with its key,
  then answered), PATCH once (never retried); the connection is dropped; nothing hangs.
- ``OK``: legal HTTP that looks odd (1xx before the answer, obs-fold, bare LF line ends,
  an identical repeated Content-Length, ...): the right answer at the first attempt.
- ``STATUS``: a well-formed response with a status no table names: the documented
  ``KneoError`` with that status, never retried.

Garbage is followed by a FIN (half-close), so a parser that waits for more sees the end
instead of a timeout, and the server then waits to see the client close the connection.
Two status lines that h11 accepts (``HTTP/0.5``, ``HTTP/2.0``) have their own test: the
drivers refuse any version but HTTP/1.0 and 1.1.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable

import pytest

from kneo_proto import KneoError, KneoProtocolError
from tests.support.scripted_server import (
    Fin,
    Script,
    ScriptedSocketServer,
    Seen,
    Send,
    Serve,
    scripted_server,
)
from tests.support.socket_subject import (
    METHODS,
    Flavour,
    Method,
    Subject,
    Tally,
    backend_fixture,  # noqa: F401 - a fixture
    check,
    flavour_fixture,  # noqa: F401 - a fixture
    run_case,
)

pytestmark = [pytest.mark.plan("T17"), pytest.mark.anyio, pytest.mark.timeout(120)]
Figure = Callable[[str, str], None]


class Kind(enum.Enum):
    PROTOCOL = "protocol error"
    REFUSED = "protocol error on a complete message"
    OK = "legal, answered"
    STATUS = "typed status error"


Build = Callable[[ScriptedSocketServer, Seen], bytes]


def parts(server: ScriptedSocketServer, seen: Seen) -> tuple[bytes, list[bytes], bytes]:
    """The server's right answer to ``seen``: status line, header lines, body."""
    head, body = server.answer(seen).split(b"\r\n\r\n", 1)
    status, *headers = head.split(b"\r\n")
    return status, headers, body


def assemble(status: bytes, headers: list[bytes], body: bytes, eol: bytes = b"\r\n") -> bytes:
    return eol.join([status, *headers]) + eol + eol + body


def raw(data: bytes) -> Build:
    """Always these bytes, whatever was asked."""
    return lambda server, seen: data


def with_status(status: bytes) -> Build:
    """The right headers and body under another status line."""

    def build(server: ScriptedSocketServer, seen: Seen) -> bytes:
        _, headers, body = parts(server, seen)
        return assemble(status, headers, body)

    return build


def with_headers(*extra: bytes, first: bool = False) -> Build:
    """The right answer with ``extra`` header lines added (before the others if ``first``)."""

    def build(server: ScriptedSocketServer, seen: Seen) -> bytes:
        status, headers, body = parts(server, seen)
        return assemble(status, [*extra, *headers] if first else [*headers, *extra], body)

    return build


def with_length(value: bytes) -> Build:
    """The right answer with its Content-Length value replaced."""

    def build(server: ScriptedSocketServer, seen: Seen) -> bytes:
        status, headers, body = parts(server, seen)
        kept = [h for h in headers if not h.lower().startswith(b"content-length")]
        return assemble(status, [*kept, b"Content-Length: " + value], body)

    return build


def chunked(encoding: bytes, chunks: Callable[[bytes], bytes]) -> Build:
    """The right answer framed by ``Transfer-Encoding: encoding``, its body as ``chunks``."""

    def build(server: ScriptedSocketServer, seen: Seen) -> bytes:
        status, headers, body = parts(server, seen)
        kept = [h for h in headers if not h.lower().startswith(b"content-length")]
        return assemble(status, [*kept, b"Transfer-Encoding: " + encoding], chunks(body))

    return build


def one_chunk(body: bytes) -> bytes:
    return b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)


def prefixed(prefix: bytes) -> Build:
    """``prefix``, then the right answer."""
    return lambda server, seen: prefix + server.answer(seen)


def bare_lf(server: ScriptedSocketServer, seen: Seen) -> bytes:
    status, headers, body = parts(server, seen)
    return assemble(status, headers, body, eol=b"\n")


def no_reason(server: ScriptedSocketServer, seen: Seen) -> bytes:
    status, headers, body = parts(server, seen)
    return assemble(status.rsplit(b" ", 1)[0] if status.count(b" ") == 2 else status, headers, body)


def http_10(server: ScriptedSocketServer, seen: Seen) -> bytes:
    status, headers, body = parts(server, seen)
    return assemble(status.replace(b"HTTP/1.1", b"HTTP/1.0"), headers, body)


def duplicate_length(server: ScriptedSocketServer, seen: Seen) -> bytes:
    status, headers, body = parts(server, seen)
    return assemble(status, [*headers, b"Content-Length: %d" % len(body)], body)


OK_HEAD = b"HTTP/1.1 200 OK\r\n"
BIG = 200 * 1024

CORPUS: dict[str, tuple[Build, Kind]] = {
    # Status lines.
    "status line without a status code": (raw(b"HTTP/1.1 OK\r\n\r\n"), Kind.PROTOCOL),
    "four-digit status": (with_status(b"HTTP/1.1 2000 OK"), Kind.PROTOCOL),
    "two-digit status": (with_status(b"HTTP/1.1 20 OK"), Kind.PROTOCOL),
    "letters for a status": (with_status(b"HTTP/1.1 abc OK"), Kind.PROTOCOL),
    "lower-case protocol name": (with_status(b"http/1.1 200 OK"), Kind.PROTOCOL),
    "ICY status line": (with_status(b"ICY 200 OK"), Kind.PROTOCOL),
    "leading space before the status line": (with_status(b" HTTP/1.1 200 OK"), Kind.PROTOCOL),
    "NUL in the reason phrase": (with_status(b"HTTP/1.1 200 O\x00K"), Kind.PROTOCOL),
    "200 KiB reason phrase": (with_status(b"HTTP/1.1 200 " + b"O" * BIG), Kind.PROTOCOL),
    "an SSH banner": (raw(b"SSH-2.0-OpenSSH_9.6\r\n"), Kind.PROTOCOL),
    "a TLS record": (raw(b"\x16\x03\x01\x00\x2a" + bytes(range(42))), Kind.PROTOCOL),
    "binary noise": (raw(bytes(range(256))), Kind.PROTOCOL),
    "nothing at all, then FIN": (raw(b""), Kind.PROTOCOL),
    "a status line, then FIN": (raw(OK_HEAD), Kind.PROTOCOL),
    "headers never ended, then FIN": (raw(OK_HEAD + b"Content-Length: 5\r\n"), Kind.PROTOCOL),
    "101 Switching Protocols, unasked": (
        prefixed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"),
        Kind.PROTOCOL,
    ),
    # Header lines.
    "header line without a colon": (with_headers(b"Bad header"), Kind.PROTOCOL),
    "header without a name": (with_headers(b": value"), Kind.PROTOCOL),
    "space inside a header name": (with_headers(b"Bad Name: x"), Kind.PROTOCOL),
    "space before the colon": (with_headers(b"X-A : 1"), Kind.PROTOCOL),
    "parenthesis in a header name": (with_headers(b"X(A): 1"), Kind.PROTOCOL),
    "NUL in a header value": (with_headers(b"X-A: a\x00b"), Kind.PROTOCOL),
    "bare CR in a header value": (with_headers(b"X-A: a\rb"), Kind.PROTOCOL),
    "folded line before any header": (with_headers(b"  folded", first=True), Kind.PROTOCOL),
    "200 KiB header line": (with_headers(b"X-Big: " + b"a" * BIG), Kind.PROTOCOL),
    "2,000 headers (200 KiB)": (
        with_headers(*[b"X-H%d: " % n + b"v" * 90 for n in range(2000)]),
        Kind.PROTOCOL,
    ),
    # Content-Length.
    "Content-Length not a number": (with_length(b"abc"), Kind.PROTOCOL),
    "negative Content-Length": (with_length(b"-1"), Kind.PROTOCOL),
    "Content-Length 10^21": (with_length(b"1" + b"0" * 21), Kind.PROTOCOL),
    "Content-Length with a plus sign": (with_length(b"+5"), Kind.PROTOCOL),
    "Content-Length in hex": (with_length(b"0x10"), Kind.PROTOCOL),
    "Content-Length with an inner space": (with_length(b"1 0"), Kind.PROTOCOL),
    "Content-Length list of two values": (with_length(b"5, 6"), Kind.PROTOCOL),
    "conflicting Content-Length headers": (with_headers(b"Content-Length: 3"), Kind.PROTOCOL),
    "Content-Length with Transfer-Encoding": (
        chunked(b"chunked\r\nContent-Length: 3", one_chunk),
        Kind.REFUSED,
    ),
    # Transfer-Encoding and chunks.
    "Transfer-Encoding gzip": (chunked(b"gzip", lambda body: body), Kind.PROTOCOL),
    "Transfer-Encoding identity": (chunked(b"identity", lambda body: body), Kind.PROTOCOL),
    "Transfer-Encoding chunked twice": (chunked(b"chunked, chunked", one_chunk), Kind.PROTOCOL),
    "chunk size zz": (chunked(b"chunked", lambda body: b"zz\r\n" + body), Kind.PROTOCOL),
    "1000-digit chunk size": (
        chunked(b"chunked", lambda body: b"f" * 1000 + b"\r\n" + body),
        Kind.PROTOCOL,
    ),
    "negative chunk size": (chunked(b"chunked", lambda body: b"-5\r\n" + body), Kind.PROTOCOL),
    "chunk longer than its size": (
        chunked(b"chunked", lambda body: b"2\r\n" + body + b"\r\n0\r\n\r\n"),
        Kind.PROTOCOL,
    ),
    "no last chunk, then FIN": (
        chunked(b"chunked", lambda body: one_chunk(body)[:-5]),
        Kind.PROTOCOL,
    ),
    "malformed trailer": (
        chunked(b"chunked", lambda body: one_chunk(body)[:-2] + b"bad trailer\r\n\r\n"),
        Kind.PROTOCOL,
    ),
    # Legal, if unusual: answered at the first attempt.
    "103 Early Hints before the answer": (
        prefixed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
        Kind.OK,
    ),
    "unsolicited 100 Continue before the answer": (
        prefixed(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Kind.OK,
    ),
    "obs-fold continuation line": (with_headers(b"X-A: a", b"  folded"), Kind.OK),
    "bare LF line ends": (bare_lf, Kind.OK),
    "no reason phrase": (no_reason, Kind.OK),
    "HTTP/1.0 answer": (http_10, Kind.OK),
    "identical Content-Length twice": (duplicate_length, Kind.OK),
    "Transfer-Encoding: Chunked (case)": (chunked(b"Chunked", one_chunk), Kind.OK),
    "chunk extension": (
        chunked(b"chunked", lambda body: one_chunk(body).replace(b"\r\n", b";a=b\r\n", 1)),
        Kind.OK,
    ),
    "trailer after the last chunk": (
        chunked(b"chunked", lambda body: one_chunk(body)[:-2] + b"X-T: 1\r\n\r\n"),
        Kind.OK,
    ),
    "Latin-1 byte in a header value": (with_headers(b"X-A: caf\xe9"), Kind.OK),
    "20 KiB header line (under httpcore2's 100 KiB)": (
        with_headers(b"X-Big: " + b"a" * 20 * 1024),
        Kind.OK,
    ),
    # A status no table names.
    "status 999": (
        lambda server, seen: assemble(
            b"HTTP/1.1 999 Weird",
            [
                b"X-Request-ID: %s" % (seen.header("x-request-id") or "").encode(),
                b"Content-Length: 2",
            ],
            b"{}",
        ),
        Kind.STATUS,
    ),
}
# How many times the fault meets each method's call (see the module docstring).
FAULTS: dict[Method, int] = {"GET": 3, "POST": 1, "PATCH": 1}


def script_for(server: ScriptedSocketServer, build: Build, kind: Kind) -> Script:
    def data(seen: Seen | None) -> bytes:
        assert seen is not None
        return build(server, seen)

    # Garbage ends with a FIN; a complete message leaves the connection open.
    return (Send(data), Fin() if kind is Kind.PROTOCOL else Serve())


async def test_t17_protocol_garbage_corpus(flavour: Flavour, figure: Figure) -> None:
    tally = Tally()
    kinds: Counter[Kind] = Counter()
    failed: list[str] = []
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, timeout=2.0)
        try:
            for name, (build, kind) in CORPUS.items():
                kinds[kind] += 1
                for method in METHODS:
                    try:
                        await one_entry(
                            subject, server, method, script_for(server, build, kind), kind, tally
                        )
                    except AssertionError as exc:
                        failed.append(f"{name} / {method}: {exc!r}")
                        server.clear()
        finally:
            await subject.aclose()
    assert failed == []
    garbage = kinds[Kind.PROTOCOL] + kinds[Kind.REFUSED]
    assert garbage >= 40
    figure(
        "T17",
        f"{flavour}: corpus of {len(CORPUS)} byte-level replies ({garbage} garbage, "
        f"{kinds[Kind.OK]} legal but odd, {kinds[Kind.STATUS]} unknown status) x 3 methods: "
        f"foreign exceptions 0, hangs 0, leftover connections 0, garbage as KneoProtocolError "
        f"{garbage * 2}/{garbage * 2} (GET after 3 attempts, PATCH after 1), keyed POST "
        f"recovered {garbage}/{garbage}; {tally.summary()}",
    )


async def one_entry(
    subject: Subject,
    server: ScriptedSocketServer,
    method: Method,
    script: Script,
    kind: Kind,
    tally: Tally,
) -> None:
    if kind in (Kind.PROTOCOL, Kind.REFUSED):
        await run_case(
            subject,
            server,
            method,
            script,
            faulted=FAULTS[method],
            error=KneoProtocolError,
            tally=tally,
        )
        return
    server.on_request(script)
    outcome = await subject.call(method)
    server.clear()
    if kind is Kind.OK:
        check(outcome, server, error=None, attempts=1)
    else:
        check(outcome, server, error=KneoError, attempts=1)
        assert isinstance(outcome.error, KneoError)
        assert outcome.error.status == 999
    tally.add(outcome)
    assert await subject.settled() == []
    follow = await subject.follow_up()
    check(follow, server, error=None, attempts=1)
    tally.add_follow_up(follow)


@pytest.mark.parametrize("version", [b"HTTP/0.5", b"HTTP/2.0"])
async def test_t17_a_status_line_with_an_unknown_http_version_is_refused(
    flavour: Flavour, version: bytes
) -> None:
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server)
        try:

            def build(srv: ScriptedSocketServer, seen: Seen) -> bytes:
                status, headers, body = parts(srv, seen)
                return assemble(status.replace(b"HTTP/1.1", version), headers, body)

            server.on_request(script_for(server, build, Kind.PROTOCOL))
            outcome = await subject.call("PATCH")
            check(outcome, server, error=KneoProtocolError, attempts=1)
        finally:
            await subject.aclose()
