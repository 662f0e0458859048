"""What the drivers report about a transport failure: the phase, by the exception's class
(httpcore2's and httpx's same-named ones), and a detail that keeps the root cause's words
(the ``ConnectionRefusedError`` under "All connection attempts failed", the OpenSSL text
under trio's empty ``ConnectError``). The core words the message from these facts."""

from __future__ import annotations

import asyncio
import ssl

import httpcore2
import httpx
import pytest

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient
from kneo_drivers._transport import failure_detail, failure_phase
from kneo_drivers.httpx import PHASES
from kneo_proto import KneoNetworkError, Phase
from tests.loopback import closed_port_url

pytestmark = pytest.mark.timeout(30)

# exception class name (httpcore2's and httpx's) -> the phase reported
PHASE_CASES: list[tuple[str, Phase | None]] = [
    ("PoolTimeout", Phase.POOL),
    ("ConnectTimeout", Phase.CONNECT),
    ("ConnectError", Phase.CONNECT),
    ("WriteTimeout", Phase.WRITE),
    ("WriteError", Phase.WRITE),
    ("ReadTimeout", Phase.READ),
    ("ReadError", Phase.READ),
    ("RemoteProtocolError", None),
    ("LocalProtocolError", None),
    ("UnsupportedProtocol", None),
    ("ProxyError", None),
]


def test_failure_report_tables_are_not_empty() -> None:
    assert PHASE_CASES
    assert DETAIL_CASES


@pytest.mark.parametrize(("name", "phase"), PHASE_CASES)
def test_failure_phase_is_the_exception_classs(name: str, phase: Phase | None) -> None:
    assert failure_phase(getattr(httpcore2, name)("x")) is phase
    assert failure_phase(getattr(httpx, name)("x"), PHASES) is phase


def chained(outer: Exception, *inner: BaseException) -> Exception:
    """``outer`` raised while handling ``inner[0]``, itself raised from ``inner[1]``, ..."""
    link: BaseException = outer
    for cause in inner:
        link.__context__ = cause
        link = cause
    return outer


refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
VERIFY = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
# (exception with its chain) -> the detail reported
DETAIL_CASES: list[tuple[Exception, str]] = [
    (httpcore2.ConnectError("[Errno 111] Connection refused"), "[Errno 111] Connection refused"),
    (
        chained(httpcore2.ConnectError("All connection attempts failed"), OSError("x"), refused),
        "All connection attempts failed: ConnectionRefusedError: [Errno 111] Connect call "
        "failed ('127.0.0.1', 9)",
    ),
    (  # trio: the OS error inside an exception group
        chained(
            httpcore2.ConnectError("all attempts to connect to 127.0.0.1:9 failed"),
            ExceptionGroup("all attempts to connect to 127.0.0.1:9 failed", [refused]),
        ),
        "all attempts to connect to 127.0.0.1:9 failed: ConnectionRefusedError: [Errno 111] "
        "Connect call failed ('127.0.0.1', 9)",
    ),
    (  # trio: an empty ConnectError over an empty BrokenResourceError over the ssl error
        chained(httpcore2.ConnectError(""), OSError(), ssl.SSLCertVerificationError(1, VERIFY)),
        VERIFY,
    ),
    (  # the loop's cancellation behind a read timeout is not a cause
        chained(httpcore2.ReadTimeout(""), TimeoutError(), asyncio.CancelledError()),
        "",
    ),
    (chained(httpcore2.ReadTimeout("timed out"), TimeoutError("timed out")), "timed out"),
    (
        chained(httpcore2.ReadError("peer closed"), ConnectionResetError(104, "reset")),
        "peer closed: ConnectionResetError: [Errno 104] reset",
    ),
]


@pytest.mark.parametrize(("exc", "detail"), DETAIL_CASES)
def test_failure_detail_keeps_the_root_causes_words(exc: Exception, detail: str) -> None:
    assert failure_detail(exc) == detail


def test_failure_detail_survives_a_cycle_in_the_chain() -> None:
    first, second = OSError("first"), OSError("second")
    first.__context__, second.__context__ = second, first
    assert failure_detail(chained(httpcore2.ConnectError("outer"), first)) == "outer: second"


@pytest.mark.anyio
async def test_httpx_refused_connection_message_names_host_port_and_phase() -> None:
    url = closed_port_url()
    profile = Profile(name="closed", url=url, api_key="kneo-httpx-key-0123456789")
    one = RetryPolicy(max_attempts=1)
    with (
        httpx.Client() as sync_http,
        SyncKneoClient(profile, http_client=sync_http, retry_policy=one) as blocking,
        pytest.raises(KneoNetworkError) as caught_blocking,
    ):
        blocking.platform.runs.get("run-1")
    async with (
        httpx.AsyncClient() as async_http,
        KneoClient(profile, http_client=async_http, retry_policy=one) as client,
    ):
        with pytest.raises(KneoNetworkError) as caught_async:
            await client.platform.runs.get("run-1")
    at = url.removeprefix("http://")
    for caught in (caught_blocking, caught_async):
        message = str(caught.value)
        assert message.startswith(
            f"GET /v1/runs/run-1: could not connect to {at} (connect phase, timeout 30 s): "
        )
        assert "nothing accepted the connection there" in message
