"""The httpx drivers (``kneo_drivers.httpx``): a caller's ``httpx.AsyncClient`` (on asyncio
and on trio) or ``httpx.Client`` under ``KneoClient`` / ``SyncKneoClient``, against the
emulator served over real HTTP on 127.0.0.1, and against scripted peers for what the
emulator cannot stage (a misframed answer, a dripping body, a redirect, a bad status line).

One async test body serves the three flavours: the blocking client is called directly (the
emulator runs in a thread of its own), and ``resolve`` awaits only the async client's
results. An event hook on the caller's httpx client records every request httpx sends: an
observer independent of kneo-client.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient
from kneo_client.testing import Fault, RunningEmulator, serve_emulator
from kneo_drivers._transport import failure_kind
from kneo_drivers.httpx import KINDS
from kneo_proto import (
    FailureKind,
    KneoClientClosedError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoProtocolError,
    KneoResponseTooLargeError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
)
from tests.integration.worlds import resolve
from tests.loopback import closed_port_url
from tests.support.scripted_server import (
    Close,
    Drip,
    Seen,
    Send,
    Serve,
    Stream,
    ok_body,
    response_bytes,
    scripted_server,
)

pytestmark = pytest.mark.timeout(30)

FLAVOURS = ("asyncio", "trio", "blocking")
ASYNC = ("asyncio", "trio")
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
KEY = "kneo-httpx-key-0123456789"
LIMIT = 10.0  # no scenario may take longer


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(flavour: str) -> str:
    """Overrides ``tests/conftest.py``'s: the blocking client runs under asyncio."""
    return "trio" if flavour == "trio" else "asyncio"


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    # A short grace period: the deadline tests leave a slow answer in flight.
    with serve_emulator(grace_period=0.5) as served:
        yield served


@dataclass
class Subject:
    """A caller's httpx client of the flavour's colour, and a kneo-client client over it."""

    flavour: str
    http: httpx.AsyncClient | httpx.Client
    kneo: KneoClient | SyncKneoClient
    sent: list[httpx.Request] = field(default_factory=list)

    async def close_kneo(self) -> None:
        if isinstance(self.kneo, KneoClient):
            await self.kneo.aclose()
        else:
            self.kneo.close()

    async def http_get(self, url: str) -> httpx.Response:
        return await resolve(self.http.get(url))


@contextlib.asynccontextmanager
async def subject(
    flavour: str, profile: Profile, http: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[Subject]:
    """A ``Subject``; ``http`` configures the httpx client, ``options`` the kneo client."""
    sent: list[httpx.Request] = []
    options.setdefault("retry_policy", FAST)
    with anyio.fail_after(LIMIT):
        if flavour == "blocking":
            with (
                httpx.Client(event_hooks={"request": [sent.append]}, **(http or {})) as sync,
                SyncKneoClient(profile, http_client=sync, **options) as blocking,
            ):
                yield Subject(flavour, sync, blocking, sent)
            return

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        async with (
            httpx.AsyncClient(event_hooks={"request": [record]}, **(http or {})) as shared,
            KneoClient(profile, http_client=shared, **options) as kneo,
        ):
            yield Subject(flavour, shared, kneo, sent)


# -- against the emulator --------------------------------------------------------------------


@pytest.mark.anyio
async def test_httpx_client_sends_the_cores_request_and_nothing_of_its_own(
    flavour: str, running: RunningEmulator
) -> None:
    """The client's default headers and cookies stay out: the core decides what is sent."""
    http = {"headers": {"X-Client-Default": "1"}, "cookies": {"session": "c"}}
    async with subject(flavour, running.profile(), http) as s:
        ready = await resolve(s.kneo.platform.health.readyz())
        created = await resolve(s.kneo.platform.runs.create.raw({"spec_id": "my-spec"}))
    assert ready.ok
    assert created.attempts == 1
    get, post = s.sent
    assert "content-length" not in get.headers
    assert post.headers.get_list("content-length") == [str(len(post.content))]
    assert str(post.url) == f"{running.url}/v1/runs"
    assert post.headers["authorization"] == f"Bearer {running.api_key}"
    assert post.headers["idempotency-key"] == created.idempotency_key
    assert post.headers["x-request-id"] == created.request_id
    assert post.headers.get_list("accept-encoding") == ["identity"]
    assert "x-client-default" not in post.headers
    assert "cookie" not in post.headers


@pytest.mark.anyio
async def test_httpx_404_raises_not_found(flavour: str, running: RunningEmulator) -> None:
    async with subject(flavour, running.profile()) as s:
        with pytest.raises(KneoNotFoundError) as caught:
            await resolve(s.kneo.platform.runs.get("run-nope"))
    error = caught.value
    assert (error.status, error.code, error.attempts) == (404, "not_found", 1)
    assert error.request_id == s.sent[0].headers["x-request-id"]


@pytest.mark.anyio
async def test_httpx_503_is_retried_with_the_same_idempotency_key(
    flavour: str, running: RunningEmulator
) -> None:
    running.emulator.faults.script("POST", "/v1/runs", Fault.error(503))
    async with subject(flavour, running.profile()) as s:
        created = await resolve(s.kneo.platform.runs.create.raw({"spec_id": "my-spec"}))
    assert created.attempts == 2
    assert [r.headers["idempotency-key"] for r in s.sent] == [created.idempotency_key] * 2
    assert [r.headers["x-kneo-attempt"] for r in s.sent] == ["1", "2"]
    assert len({r.headers["x-request-id"] for r in s.sent}) == 1
    assert created.idempotency_key is not None
    assert running.emulator.counters.executions[created.idempotency_key] == 1


@pytest.mark.anyio
async def test_httpx_attempts_are_logged_with_the_key_redacted(
    flavour: str, running: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    running.emulator.faults.script("GET", "/v1/runs", Fault.error(503))
    caplog.set_level(logging.DEBUG, logger="kneo_client.transport")
    async with subject(flavour, running.profile()) as s:
        await resolve(s.kneo.platform.runs.list())
    lines = [r.getMessage() for r in caplog.records if r.name == "kneo_client.transport"]
    url = f"{running.url}/v1/runs?limit=100&offset=0&sort_by=updated_at&sort_order=desc"
    shown = [line.split(" request_id=")[0].split(" in ")[0] for line in lines]
    assert shown == [
        f"GET {url} attempt 1 of 3 (timeout 10 s)",
        f"GET {url} -> 503",
        "GET /v1/runs -> 503; retrying",
        f"GET {url} attempt 2 of 3 (timeout 10 s)",
        f"GET {url} -> 200",
        "GET /v1/runs finished: 200 after 2 attempt(s)",
    ]
    assert running.api_key not in caplog.text


@pytest.mark.anyio
async def test_httpx_refused_connection_raises_network_error_of_kind_connect(flavour: str) -> None:
    profile = Profile(name="closed", url=closed_port_url(), api_key=KEY)
    async with subject(flavour, profile) as s:
        with pytest.raises(KneoNetworkError) as caught:
            await resolve(s.kneo.platform.runs.create({"spec_id": "s"}))
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connect", 3, None)
    assert not isinstance(caught.value, KneoTimeoutError)
    assert len(s.sent) == 3


@pytest.mark.anyio
async def test_httpx_body_over_the_cap_raises_too_large_and_the_client_recovers(
    flavour: str, running: RunningEmulator
) -> None:
    async with subject(flavour, running.profile(), max_response_bytes=64) as s:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            await resolve(s.kneo.platform.health.readyz())
        assert (caught.value.attempts, caught.value.status) == (1, None)
        assert (await s.http_get(f"{running.url}/v1/readyz")).json()["ok"] is True
    assert len(s.sent) == 2


@pytest.mark.anyio
async def test_httpx_deadline_cuts_a_slow_answer_short(
    flavour: str, running: RunningEmulator
) -> None:
    running.emulator.faults.script("GET", "/v1/runs", Fault.latency(5))
    async with subject(flavour, running.profile()) as s:
        started = time.monotonic()
        with pytest.raises(KneoTimeoutError) as caught:
            await resolve(s.kneo.with_options(deadline=0.3).platform.runs.list())
        elapsed = time.monotonic() - started
    assert caught.value.attempts == 1
    assert elapsed < 2.0


@pytest.mark.anyio
async def test_httpx_failed_tls_handshake_raises_tls_error_without_retry(
    flavour: str, running: RunningEmulator
) -> None:
    """The emulator speaks plain HTTP, so an https:// handshake with it fails."""
    profile = Profile(name="tls", url=running.url.replace("http://", "https://"), api_key=KEY)
    async with subject(flavour, profile) as s:
        with pytest.raises(KneoTLSError) as caught:
            await resolve(s.kneo.platform.runs.list())
    assert (caught.value.kind, caught.value.attempts) == ("tls", 1)


@pytest.mark.anyio
async def test_httpx_client_stays_open_and_usable_after_the_kneo_client_closes(
    flavour: str, running: RunningEmulator
) -> None:
    async with subject(flavour, running.profile()) as s:
        await resolve(s.kneo.platform.health.readyz())
        await s.close_kneo()
        assert not s.http.is_closed
        assert (await s.http_get(f"{running.url}/v1/healthz")).status_code == 200
        with pytest.raises(KneoClientClosedError):
            await resolve(s.kneo.platform.health.readyz())
        options: dict[str, Any] = {"http_client": s.http}
        again = (SyncKneoClient if flavour == "blocking" else KneoClient)(
            running.profile(), **options
        )
        assert (await resolve(again.platform.health.readyz())).ok
        await Subject(flavour, s.http, again).close_kneo()
        assert not s.http.is_closed


# -- async only: cancellation and close ------------------------------------------------------


@pytest.mark.parametrize("flavour", ASYNC)
@pytest.mark.anyio
async def test_httpx_cancellation_propagates_and_the_client_stays_usable(
    flavour: str, running: RunningEmulator
) -> None:
    running.emulator.faults.script("GET", "/v1/runs", Fault.latency(5))
    async with subject(flavour, running.profile()) as s:
        assert isinstance(s.kneo, KneoClient)
        with anyio.move_on_after(0.3) as scope:
            await s.kneo.platform.runs.list()
        assert scope.cancelled_caught
        assert (await s.kneo.platform.runs.list()).total == 0
    assert [r.headers["x-kneo-attempt"] for r in s.sent] == ["1", "1"]


@pytest.mark.parametrize("flavour", ASYNC)
@pytest.mark.anyio
async def test_httpx_closing_the_kneo_client_ends_a_call_in_flight(
    flavour: str, running: RunningEmulator
) -> None:
    running.emulator.faults.script("GET", "/v1/runs", Fault.latency(5))
    outcomes: list[BaseException] = []
    async with subject(flavour, running.profile()) as s:
        assert isinstance(s.kneo, KneoClient)
        kneo = s.kneo

        async def call() -> None:
            try:
                await kneo.platform.runs.list()
            except KneoClientClosedError as exc:
                outcomes.append(exc)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await anyio.sleep(0.2)
            await kneo.aclose()
        assert time.monotonic() - started < 2.0
        assert not s.http.is_closed
    assert len(outcomes) == 1


# -- scripted peers: what the emulator cannot stage ------------------------------------------


def answer_head(seen: Seen | None) -> bytes:
    """The status line and headers of an answer to ``GET /v1/runs/{id}`` (``ok_body``)."""
    assert seen is not None
    echo = [("X-Request-ID", seen.header("x-request-id") or "")]
    body = ok_body("GET")
    return response_bytes(200, body, [*echo, ("Content-Type", "application/json")])[: -len(body)]


def length_and_chunked(seen: Seen | None) -> bytes:
    """Valid chunked framing plus a Content-Length: h11 accepts it, the core refuses it."""
    assert seen is not None
    body = ok_body("GET")
    chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    headers = [
        ("X-Request-ID", seen.header("x-request-id") or ""),
        ("Content-Length", "5"),
        ("Transfer-Encoding", "chunked"),
    ]
    return response_bytes(200, chunked, headers, length=False)


@pytest.mark.anyio
async def test_httpx_connection_the_core_distrusts_is_not_reused(flavour: str) -> None:
    with scripted_server() as server:
        server.on_request((Send(length_and_chunked), Serve()))
        profile = Profile(name="scripted", url=server.url, api_key=KEY)
        async with subject(flavour, profile) as s:
            got = await resolve(s.kneo.platform.runs.get.raw("run-0001"))
        distrusted = server.connections[0]
        assert distrusted.ended.wait(1.0)
    assert got.attempts == 2
    assert [c.requests for c in server.connections] == [1, 1]
    assert distrusted.closed_by == "client"


@pytest.mark.anyio
async def test_httpx_deadline_cuts_a_dripping_body_short(flavour: str) -> None:
    """Every read returns in time, so only the call's deadline can stop the attempt. (The
    head comes at once: over a caller's client, a blocking attempt checks the deadline
    between body chunks only.)"""
    with scripted_server() as server:
        server.on_request((Send(answer_head), Drip(ok_body("GET"), interval=0.05), Close()))
        profile = Profile(name="scripted", url=server.url, api_key=KEY)
        async with subject(flavour, profile) as s:
            started = time.monotonic()
            with pytest.raises(KneoTimeoutError) as caught:
                await resolve(s.kneo.with_options(deadline=0.5).platform.runs.get("run-0001"))
            elapsed = time.monotonic() - started
    assert caught.value.attempts == 1
    assert 0.45 < elapsed < 1.5


def endless_head(seen: Seen | None) -> bytes:
    assert seen is not None
    headers = [("X-Request-ID", seen.header("x-request-id") or ""), ("Content-Length", "10000000")]
    return response_bytes(200, b"", headers, length=False)


@pytest.mark.anyio
async def test_httpx_endless_body_is_cut_at_the_cap(flavour: str) -> None:
    """Many reads past the cap's chunk: under trio, stopping leaves no generator behind."""
    with scripted_server() as server:
        server.on_request((Send(endless_head), Stream(b"x" * 4096)))
        profile = Profile(name="scripted", url=server.url, api_key=KEY)
        async with subject(flavour, profile, max_response_bytes=100_000) as s:
            with pytest.raises(KneoResponseTooLargeError) as caught:
                await resolve(s.kneo.platform.runs.get("run-0001"))
            assert (await resolve(s.kneo.platform.runs.get("run-0001"))).run_id == "run-0001"
        cut = server.connections[0]
        assert cut.ended.wait(1.0)
    assert caught.value.attempts == 1
    assert (len(server.connections), cut.closed_by) == (2, "client")


def mock(respond: Callable[[httpx.Request], httpx.Response]) -> dict[str, Any]:
    """httpx client options: answer with ``respond``, and follow redirects if asked to."""
    return {"transport": httpx.MockTransport(respond), "follow_redirects": True}


@pytest.mark.anyio
async def test_httpx_redirect_is_not_followed_even_by_a_following_client(flavour: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "/v1/runs/run-0002"})

    profile = Profile(name="mock", url="https://kneo.test", api_key=KEY)
    async with subject(flavour, profile, mock(respond)) as s:
        with pytest.raises(KneoUnexpectedRedirectError) as caught:
            await resolve(s.kneo.platform.runs.get("run-0001"))
    assert (caught.value.status, caught.value.attempts) == (307, 1)
    assert [r.url.path for r in s.sent] == ["/v1/runs/run-0001"]


@pytest.mark.parametrize(
    ("version", "trusted"), [(b"HTTP/1.1", True), (b"HTTP/2", True), (b"HTTP/2.0", False)]
)
@pytest.mark.anyio
async def test_httpx_status_line_version_is_checked(
    flavour: str, version: bytes, trusted: bool
) -> None:
    """httpx reports ``HTTP/2`` for a real HTTP/2 exchange; h11 parses ``HTTP/2.0`` (or any
    other single digit) with HTTP/1.1 framing, and such a peer cannot be trusted."""

    def respond(request: httpx.Request) -> httpx.Response:
        echo = {"X-Request-ID": request.headers["x-request-id"]}
        body = {"ok": True, "service": "mock", "version": "1"}
        return httpx.Response(200, headers=echo, json=body, extensions={"http_version": version})

    profile = Profile(name="mock", url="https://kneo.test", api_key=KEY)
    once = RetryPolicy(max_attempts=1)
    async with subject(flavour, profile, mock(respond), retry_policy=once) as s:
        if trusted:
            assert (await resolve(s.kneo.platform.health.healthz())).ok
            return
        with pytest.raises(KneoProtocolError, match=r"unsupported HTTP version 'HTTP/2\.0'"):
            await resolve(s.kneo.platform.health.healthz())


# -- the exception map ------------------------------------------------------------------------


def tls_connect_error() -> httpx.ConnectError:
    """A connect error as httpx raises it for a failed handshake: the ssl error behind it."""
    try:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("handshake failed") from exc
    except httpx.ConnectError as error:
        return error


HTTPX_KINDS = [
    (httpx.ConnectError("refused"), FailureKind.CONNECT),
    (tls_connect_error(), FailureKind.TLS),
    (httpx.ConnectTimeout("connect timed out"), FailureKind.CONNECT_TIMEOUT),
    (httpx.PoolTimeout("no connection free"), FailureKind.CONNECT_TIMEOUT),
    (httpx.ReadTimeout("read timed out"), FailureKind.TIMEOUT),
    (httpx.WriteTimeout("write timed out"), FailureKind.TIMEOUT),
    (httpx.ReadError("reset"), FailureKind.NETWORK),
    (httpx.WriteError("broken pipe"), FailureKind.NETWORK),
    (httpx.CloseError("close failed"), FailureKind.NETWORK),
    (httpx.RemoteProtocolError("bad status line"), FailureKind.PROTOCOL),
    (httpx.LocalProtocolError("bad header"), FailureKind.PROTOCOL),
    (httpx.ProxyError("proxy refused"), FailureKind.PROXY),  # ADR 0013
    (httpx.UnsupportedProtocol("ftp://"), FailureKind.CONNECT),
]


@pytest.mark.parametrize(
    ("exc", "kind"), HTTPX_KINDS, ids=[f"{type(e).__name__}-{k.name}" for e, k in HTTPX_KINDS]
)
def test_httpx_failure_kind(exc: Exception, kind: FailureKind) -> None:
    assert failure_kind(exc, KINDS) is kind
