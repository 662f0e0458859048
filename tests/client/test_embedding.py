"""The embedding guide's example drivers (``docs/examples``), run as written against the
platform emulator on a loopback socket: the same scenarios over ``http.client`` and over
urllib3.

The examples are imported as plain modules from ``docs/examples``, as a user who copied them
would. The guide's code blocks are checked to be excerpts of those modules, so the modules
stay the one copy of the code.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    EmptyPoolError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault
from kneo_proto import (
    CallOptions,
    ClientConfig,
    FailureKind,
    KneoNetworkError,
    KneoNotFoundError,
    KneoResponseTooLargeError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    Request,
    RetryPolicy,
    endpoints,
)
from kneo_proto.models import RunStatusResponse
from tests.loopback import closed_port_url
from tests.support.emulated import API_KEY, POLL_INTERVAL, Emulated, run_id, serve

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
GUIDE = EXAMPLES.parent / "embedding.md"
sys.path.insert(0, str(EXAMPLES))

import embed_http_client  # noqa: E402
import embed_urllib3  # noqa: E402
from embed_loops import Client  # noqa: E402

pytestmark = pytest.mark.timeout(20)

Driver = embed_http_client.HttpClientDriver | embed_urllib3.Urllib3Driver
DRIVERS: dict[str, Callable[[], Driver]] = {
    "http.client": embed_http_client.HttpClientDriver,
    "urllib3": embed_urllib3.Urllib3Driver,
}
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
SLOW = 5.0  # how late a held-back answer comes; far above every timeout used here
FIRST, SECOND = run_id(1), run_id(2)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    made = DRIVERS[request.param]()
    yield made
    made.close()


@pytest.fixture
def emulated() -> Emulated:
    emulated = Emulated()
    emulated.seed(runs=7)
    return emulated


@pytest.fixture
def url(emulated: Emulated) -> Iterator[str]:
    with serve(emulated) as running:
        yield running.url


def fault_on(emulated: Emulated, path: str, fault: Fault) -> None:
    emulated.emulator.faults.script("*", path, fault)


def make_client(driver: Driver, url: str, max_response_bytes: int = 1 << 20) -> Client:
    config = ClientConfig(
        url, api_key=API_KEY, retry_policy=FAST, max_response_bytes=max_response_bytes
    )
    return Client(config, driver)


@pytest.fixture
def client(driver: Driver, url: str) -> Client:
    return make_client(driver, url)


# -- the scenarios, on both stacks ------------------------------------------------------------


def test_embedded_get_is_decoded_into_its_model(client: Client, emulated: Emulated) -> None:
    finished = client.call(endpoints.get_run(FIRST))
    assert isinstance(finished.result, RunStatusResponse)
    assert (finished.result.run_id, finished.result.status) == (FIRST, "completed")
    sent = emulated.log[-1]
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    assert (sent.header("accept-encoding"), sent.header("x-kneo-attempt")) == ("identity", "1")
    names = [name.lower() for name, _ in sent.headers]
    assert names.count("accept-encoding") == names.count("host") == names.count("user-agent") == 1
    assert finished.request_id == sent.header("x-request-id")


def test_embedded_keyed_post_is_retried_after_503_with_the_same_key(
    client: Client, emulated: Emulated
) -> None:
    emulated.emulator.faults.script("POST", "/v1/runs", Fault.error(503))
    finished = client.call(endpoints.create_run({"spec_id": "my-spec"}, idempotency_key="k-1"))
    assert (finished.attempts, finished.idempotency_key) == (2, "k-1")
    assert finished.result.run_id == emulated.run_ids()[-1]
    seen = emulated.requests_to("/v1/runs")
    assert [r.header("idempotency-key") for r in seen] == ["k-1", "k-1"]
    assert [r.header("x-kneo-attempt") for r in seen] == ["1", "2"]
    assert seen[0].header("x-request-id") == seen[1].header("x-request-id")
    assert seen[0].body == seen[1].body
    names = [name.lower() for name, _ in seen[1].headers]
    assert names.count("content-length") == names.count("idempotency-key") == 1
    assert emulated.executions["k-1"] == 1


def test_embedded_404_raises_not_found(client: Client) -> None:
    with pytest.raises(KneoNotFoundError) as caught:
        client.call(endpoints.get_run("nope"), CallOptions(request_id="rid-404"))
    error = caught.value
    assert (error.status, error.code, error.request_id, error.attempts) == (
        404,
        "not_found",
        "rid-404",
        1,
    )


def test_embedded_connection_refused_is_retried_then_raises_network_error(
    driver: Driver,
) -> None:
    client = make_client(driver, closed_port_url())
    with pytest.raises(KneoNetworkError) as caught:
        client.call(endpoints.create_run({"spec_id": "my-spec"}))
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connect", 3, None)
    assert not isinstance(caught.value, KneoTimeoutError)


def test_embedded_page_walk_yields_every_run_once(client: Client, emulated: Emulated) -> None:
    runs = [run.run_id for run in client.iter_runs(page_size=3)]
    assert sorted(runs) == emulated.run_ids()
    assert len(set(runs)) == 7
    assert [r.target for r in emulated.log] == [
        f"/v1/runs?limit=3&offset={offset}&sort_by=updated_at&sort_order=desc"
        for offset in (0, 3, 6)
    ]


def test_embedded_body_over_the_cap_raises_too_large_and_the_driver_recovers(
    driver: Driver, url: str
) -> None:
    with pytest.raises(KneoResponseTooLargeError) as caught:
        make_client(driver, url, max_response_bytes=64).call(endpoints.get_run(FIRST))
    assert (caught.value.attempts, caught.value.status) == (1, None)
    again = make_client(driver, url).call(endpoints.get_run(FIRST))
    assert again.result.run_id == FIRST


def test_embedded_wait_for_run_polls_until_terminal(client: Client, emulated: Emulated) -> None:
    created = client.call(endpoints.create_run({"spec_id": "my-spec"})).result
    done = client.wait_for_run(created.run_id, timeout=5.0, poll_interval=POLL_INTERVAL)
    assert (done.run_id, done.status) == (created.run_id, "completed")
    assert emulated.requests[f"/v1/runs/{created.run_id}"] == 2


def test_embedded_read_timeout_is_retried(client: Client, emulated: Emulated) -> None:
    fault_on(emulated, f"/v1/runs/{FIRST}", Fault.latency(SLOW))
    finished = client.call(endpoints.get_run(FIRST), CallOptions(timeout=0.2))
    assert (finished.attempts, finished.result.run_id) == (2, FIRST)


def test_embedded_deadline_bounds_the_whole_call(client: Client, emulated: Emulated) -> None:
    fault_on(emulated, f"/v1/runs/{FIRST}", Fault.latency(SLOW))
    started = time.monotonic()
    with pytest.raises(KneoTimeoutError):
        client.call(endpoints.get_run(FIRST), CallOptions(deadline=0.3))
    assert time.monotonic() - started < SLOW / 2


def test_embedded_dropped_connection_is_retried(client: Client, emulated: Emulated) -> None:
    fault_on(emulated, f"/v1/runs/{FIRST}", Fault.reset_before_response())
    finished = client.call(endpoints.get_run(FIRST))
    assert finished.attempts == 2


def test_embedded_redirect_is_not_followed(client: Client, emulated: Emulated) -> None:
    redirect = Fault(status=307, headers=(("Location", f"/v1/runs/{SECOND}"),))
    fault_on(emulated, f"/v1/runs/{FIRST}", redirect)
    with pytest.raises(KneoUnexpectedRedirectError) as caught:
        client.call(endpoints.get_run(FIRST))
    assert (caught.value.status, caught.value.attempts) == (307, 1)
    assert emulated.requests[f"/v1/runs/{SECOND}"] == 0


def test_embedded_failed_tls_handshake_raises_tls_error_without_retry(
    driver: Driver, url: str
) -> None:
    """The loopback server speaks plain HTTP, so an https:// handshake with it fails."""
    client = make_client(driver, url.replace("http://", "https://"))
    with pytest.raises(KneoTLSError) as caught:
        client.call(endpoints.get_run(FIRST))
    assert (caught.value.kind, caught.value.attempts) == ("tls", 1)


def test_embedded_driver_runs_the_sync_client_facade(driver: Driver, url: str) -> None:
    profile = Profile(name="embedded", url=url, api_key=API_KEY)
    with SyncKneoClient(profile, driver=driver) as kneo:
        created = kneo.platform.runs.create({"spec_id": "my-spec"})
        assert kneo.platform.runs.get(created.run_id).run_id == created.run_id


@contextlib.contextmanager
def one_answer_per_connection(
    wire: bytes, drip: float = 0.0
) -> Iterator[tuple[str, threading.Semaphore]]:
    """Answer the first request of each connection with ``wire``, then close the connection.

    With ``drip``, everything after the first 100 bytes goes out one byte every ``drip`` s.
    """
    answered, stop = threading.Semaphore(0), threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)

    def run() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), listener.accept()[0] as conn:
                request = b""
                while b"\r\n\r\n" not in request and (chunk := conn.recv(65536)):
                    request += chunk
                conn.sendall(wire[:100] if drip else wire)
                for index in range(100, len(wire) if drip else 0):
                    if stop.wait(drip):
                        break
                    conn.sendall(wire[index : index + 1])
                conn.shutdown(socket.SHUT_RDWR)
                answered.release()

    thread = threading.Thread(target=run, name="one-answer-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", answered
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def healthz_body() -> bytes:
    """What the platform answers to ``GET /v1/healthz``."""
    return Emulator().handle(Request("GET", "http://emulator.test/v1/healthz", ())).response.body


def http_wire(body: bytes, length: int | None = None) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) if length is None else length}\r\n"
    return head.encode() + b"Content-Type: application/json\r\n\r\n" + body


def test_embedded_idle_connection_closed_by_the_server_is_reopened_not_retried(
    driver: Driver,
) -> None:
    health = healthz_body()
    with one_answer_per_connection(http_wire(health)) as (url, answered):
        client = make_client(driver, url)
        first = client.call(endpoints.healthz())
        assert answered.acquire(timeout=5)  # the server has closed the kept-alive connection
        second = client.call(endpoints.healthz())
    assert (first.attempts, second.attempts) == (1, 1)
    assert second.result.ok


def test_embedded_body_cut_short_raises_network_error(driver: Driver) -> None:
    cut_short = http_wire(b'{"ok": tr', length=1000)
    with one_answer_per_connection(cut_short) as (url, _), pytest.raises(KneoNetworkError) as err:
        make_client(driver, url).call(endpoints.healthz())
    assert (err.value.kind, err.value.attempts) == ("network", 3)


def test_embedded_deadline_cuts_a_dripping_body_short(driver: Driver) -> None:
    """Every read returns in time, so only the call's deadline can stop the attempt."""
    health = healthz_body()
    with one_answer_per_connection(http_wire(health), drip=0.05) as (url, _):
        started = time.monotonic()
        with pytest.raises(KneoTimeoutError) as caught:
            make_client(driver, url).call(endpoints.healthz(), CallOptions(deadline=0.5))
        elapsed = time.monotonic() - started
    assert caught.value.attempts == 1
    assert 0.45 < elapsed < 1.5


# -- the exception maps, for failures a loopback server cannot stage --------------------------

HTTP_CLIENT_KINDS = [
    (ConnectionRefusedError(), False, FailureKind.CONNECT),
    (socket.gaierror(), False, FailureKind.CONNECT),
    (TimeoutError(), False, FailureKind.CONNECT_TIMEOUT),
    (ssl.SSLCertVerificationError(), False, FailureKind.TLS),
    (TimeoutError(), True, FailureKind.TIMEOUT),
    (ConnectionResetError(), True, FailureKind.NETWORK),
    (BrokenPipeError(), True, FailureKind.NETWORK),
    (http.client.RemoteDisconnected("closed without a response"), True, FailureKind.NETWORK),
    (http.client.IncompleteRead(b"{"), True, FailureKind.NETWORK),
    (http.client.BadStatusLine("HTTP/9"), True, FailureKind.PROTOCOL),
    (http.client.LineTooLong("header line"), True, FailureKind.PROTOCOL),
    (embed_http_client.TooLarge(), True, FailureKind.TOO_LARGE),
]


@pytest.mark.parametrize(("exc", "sent", "kind"), HTTP_CLIENT_KINDS)
def test_http_client_failure_kind(exc: Exception, sent: bool, kind: FailureKind) -> None:
    assert embed_http_client.failure_kind(exc, sent) is kind


def urllib3_errors() -> list[tuple[Exception, FailureKind]]:
    conn = urllib3.connection.HTTPConnection("127.0.0.1")
    pool = urllib3.HTTPConnectionPool("127.0.0.1")
    return [
        (NewConnectionError(conn, "refused"), FailureKind.CONNECT),
        (NameResolutionError("nowhere.invalid", conn, socket.gaierror()), FailureKind.CONNECT),
        (ConnectTimeoutError(conn, "connect timed out"), FailureKind.CONNECT_TIMEOUT),
        (EmptyPoolError(pool, "no connection free"), FailureKind.CONNECT_TIMEOUT),
        (SSLError("handshake failed"), FailureKind.TLS),
        (ReadTimeoutError(pool, "/v1/runs", "read timed out"), FailureKind.TIMEOUT),
        (ProtocolError("Connection aborted.", ConnectionResetError()), FailureKind.NETWORK),
        (embed_urllib3.TooLarge(), FailureKind.TOO_LARGE),
    ]


def test_urllib3_failure_kind() -> None:
    for exc, kind in urllib3_errors():
        assert embed_urllib3.failure_kind(exc) is kind, exc


# -- the guide shows the modules; it does not copy them ---------------------------------------


def is_excerpt(block: list[str], source: list[str]) -> bool:
    """True when ``block`` is a run of ``source``'s lines, all indented alike."""
    for start in range(len(source) - len(block) + 1):
        first = source[start]
        if not first.endswith(block[0]):
            continue
        indent = first[: len(first) - len(block[0])]
        if indent.strip():
            continue
        expected = [indent + line if line else "" for line in block]
        if source[start : start + len(block)] == expected:
            return True
    return False


def test_guide_code_blocks_are_excerpts_of_the_example_modules() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    sources = [path.read_text().splitlines() for path in sorted(EXAMPLES.glob("*.py"))]
    assert len(blocks) >= 4
    for block in blocks:
        lines = block.rstrip("\n").splitlines()
        assert any(is_excerpt(lines, source) for source in sources), block
