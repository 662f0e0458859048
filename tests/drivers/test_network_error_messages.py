"""Transport errors that explain themselves, over real loopback sockets, on every client
(asyncio, trio, blocking): the message names ``host:port``, the phase and the timeout in
force (and the deadline when it ended the call), and says what to do (issue 11, part 5).

- a refused connection (a port nothing listens on): the connect phase, "nothing accepted";
- a server that reads the request and never answers: the read phase and its timeout;
- the same under a shorter call deadline: the deadline is named as what ended the call;
- an https URL on a server whose certificate the system trust store does not vouch for:
  ``ca_bundle`` / ``KNEO_CA_BUNDLE`` named;
- an https URL on a plain-http port: ``http://`` suggested.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_proto import KneoError, KneoNetworkError, KneoTimeoutError, KneoTLSError, RetryPolicy
from tests.loopback import closed_port_url
from tests.support.scripted_server import GUARD, RUN_ID, Close, Pause, Send, scripted_server
from tests.support.socket_subject import (
    API_KEY as KEY,
    CASE_LIMIT,
    Flavour,
    Outcome,
    Subject,
    backend_fixture,  # noqa: F401 - a fixture
    flavour_fixture,  # noqa: F401 - a fixture
)
from tests.support.tls import Certificates, RecordingServer, issue_certificates, serving

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ONE_TRY = RetryPolicy(max_attempts=1)
WHERE = f"GET /v1/runs/{RUN_ID}: "
PLAIN_HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that reads each request and then says nothing."""
    with scripted_server() as server:
        server.on_request(*[(Pause(GUARD),)] * 4)
        yield server.url


async def one_get(
    flavour: Flavour, url: str, *, per_phase: float, deadline: float | None = None
) -> Outcome:
    """One GET without retries, through ``Subject`` (which watches every timeout handed to
    the pool's network backend: none may be unbounded)."""
    subject = Subject(flavour, url, timeout=per_phase, policy=ONE_TRY)
    try:
        return await subject.call("GET", deadline=deadline, lossy=True)
    finally:
        await subject.aclose()


async def tls_get(flavour: Flavour, url: str) -> BaseException:
    """What one https GET raised. (``Subject``'s recording backend does not speak TLS.)"""
    profile = Profile(name="tls", url=url, api_key=KEY)
    with anyio.fail_after(CASE_LIMIT):
        if flavour == "blocking":
            return await anyio.to_thread.run_sync(_blocking_tls_get, profile)
        async with KneoClient(profile, retry_policy=ONE_TRY) as client:
            try:
                await client.platform.runs.get(RUN_ID)
            except KneoError as exc:
                return exc
    raise AssertionError("the https GET succeeded")


def _blocking_tls_get(profile: Profile) -> BaseException:
    with SyncKneoClient(profile, retry_policy=ONE_TRY) as client:
        try:
            client.platform.runs.get(RUN_ID)
        except KneoError as exc:
            return exc
    raise AssertionError("the https GET succeeded")


async def test_refused_connection_names_host_port_phase_and_what_to_check(
    flavour: Flavour,
) -> None:
    url = closed_port_url()
    outcome = await one_get(flavour, url, per_phase=2.0)
    error = outcome.error
    assert type(error) is KneoNetworkError, repr(error)
    message = str(error)
    at = url.removeprefix("http://")
    assert message.startswith(f"{WHERE}could not connect to {at} (connect phase, timeout 2 s): ")
    assert "ConnectionRefusedError" in message
    assert " - nothing accepted the connection there: check that the platform is running" in message
    assert message.endswith(f"(request_id={error.request_id})")


async def test_read_timeout_names_host_port_phase_and_the_timeout(
    flavour: Flavour, silent_url: str
) -> None:
    outcome = await one_get(flavour, silent_url, per_phase=0.3)
    error = outcome.error
    assert type(error) is KneoTimeoutError, repr(error)
    at = silent_url.removeprefix("http://")
    message = str(error)
    assert message.startswith(
        f"{WHERE}timed out waiting for the response from {at} (read phase, timeout 0.3 s)"
    )
    assert " - the platform did not answer in time: raise timeout" in message
    assert "deadline" not in message


async def test_read_cut_by_the_deadline_names_the_deadline(
    flavour: Flavour, silent_url: str
) -> None:
    outcome = await one_get(flavour, silent_url, per_phase=5.0, deadline=0.3)
    error = outcome.error
    assert type(error) is KneoTimeoutError, repr(error)
    at = silent_url.removeprefix("http://")
    message = str(error)
    # Which fires first, the read's timeout (cut to 0.3 s) or the async driver's cut-off at
    # the deadline, is a race; either way the deadline is named as what ended the call.
    assert message.startswith(f"{WHERE}timed out "), message
    assert f" {at} (" in message
    # The attempt's timeout is cut to what the deadline leaves when it is sent: 0.3 s, or a
    # hair less when the machine is slow to get there.
    assert re.search(r"timeout 0\.(3|29\d*) s, the call's deadline of 0\.3 s ran out\)", message)
    assert " - the call's deadline ended it: raise deadline" in message


async def test_untrusted_certificate_names_ca_bundle_and_kneo_ca_bundle(
    flavour: Flavour, certs: Certificates
) -> None:
    server = RecordingServer(ssl_context=certs.localhost, url_host="localhost")
    with serving(server):
        error = await tls_get(flavour, server.url)
    assert type(error) is KneoTLSError, repr(error)
    message = str(error)
    assert message.startswith(
        f"{WHERE}TLS handshake with localhost:{server.port} failed: "
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    assert "by default the system's trust store (or the file SSL_CERT_FILE names)" in message
    assert "ca_bundle (in the profile) or KNEO_CA_BUNDLE" in message
    assert server.requests == []  # nothing, the key included, reached the server


async def test_https_to_a_plain_http_port_suggests_http(flavour: Flavour) -> None:
    with scripted_server() as server:
        server.on_accept(*[(Send(PLAIN_HTTP), Close())] * 4)
        url = server.url.replace("http://", "https://")
        error = await tls_get(flavour, url)
    assert type(error) is KneoTLSError, repr(error)
    message = str(error)
    at = url.removeprefix("https://")
    assert message.startswith(f"{WHERE}TLS handshake with {at} failed: [SSL: WRONG_VERSION_NUMBER]")
    assert "this port serves http://, so use an http:// URL" in message
