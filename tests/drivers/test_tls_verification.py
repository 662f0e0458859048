"""T37: TLS verification is on by default; a private CA is trusted only when the profile
names it (``ca_bundle``), and only by that client.

A trustme CA issues a ``localhost`` certificate, a 127.0.0.1 IP certificate and an expired
one; ``RecordingServer`` serves the platform emulator with each over TLS on 127.0.0.1 and
records every byte it decrypted. Six scenarios run on the async client (asyncio and trio)
and the blocking one: the default client (system trust store, which does not hold the test
CA) fails with ``KneoTLSError`` before any application byte, so no key, reaches the server;
with the CA configured the call succeeds, over a DNS name and over an IP address; a
host-name mismatch either way and an expired certificate fail. One's own unverified
``ssl_context`` is not inherited by any other client (checked with three clients side by
side); ``verify=False`` and every other trust setting are ``test_tls_trust.py``'s.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

import anyio
import httpcore2
import pytest

from kneo_client import KneoClient, SyncKneoClient, load_profile
from kneo_client.testing import Emulator, memory_handler
from kneo_drivers._transport import failure_kind, tls_context
from kneo_proto import (
    ENV_CA_BUNDLE,
    AuthScheme,
    FailureKind,
    KneoConfigurationError,
    KneoTLSError,
    Profile,
    ProfileError,
    Request,
    Response,
    RetryPolicy,
)
from kneo_proto.models import RunCreateRequestDict
from tests.network_guard import NetworkGuard
from tests.support.tls import Certificates, RecordingServer, issue_certificates, serving

pytestmark = [pytest.mark.plan("T37"), pytest.mark.timeout(60)]

KEY = "kneo_canary_" + token_hex(18)
LIMIT = 10.0  # seconds any async test body may take (pytest-timeout cannot stop trio)
ONE_TRY = RetryPolicy(max_attempts=1)
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)  # the default 3 attempts, quickly


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@dataclass(frozen=True)
class Scenario:
    """One TLS set-up: the certificate served, the URL's host, whether the CA is trusted."""

    name: str
    cert: str  # "localhost", "ip" or "expired"
    url_host: str
    trust_ca: bool
    succeeds: bool


SCENARIOS = [
    Scenario("no CA configured (system trust store)", "localhost", "localhost", False, False),
    Scenario("CA configured, localhost certificate", "localhost", "localhost", True, True),
    Scenario("CA configured, 127.0.0.1 IP certificate", "ip", "127.0.0.1", True, True),
    Scenario("host mismatch: 127.0.0.1 URL, localhost cert", "localhost", "127.0.0.1", True, False),
    Scenario("host mismatch: localhost URL, 127.0.0.1 cert", "ip", "localhost", True, False),
    Scenario("expired certificate", "expired", "localhost", True, False),
]
DRIVERS = ["asyncio", "trio", "blocking"]


@dataclass
class Tally:
    unexpected_successes: int = 0
    decrypted_after_failure: int = 0
    handshakes_per_failure: int = 0
    failures: int = 0
    successes: int = 0


TALLY = Tally()


def platform() -> Callable[[Request], Response]:
    """The emulator, answering ``RecordingServer``'s requests."""
    return memory_handler(Emulator(api_key=KEY))


def run_of(caller: str) -> RunCreateRequestDict:
    """A run of a sample spec, labelled with the client that starts it."""
    return {"spec_id": "my-spec", "labels": {"client": caller}}


def server_for(certs: Certificates, scenario: Scenario) -> RecordingServer:
    context: ssl.SSLContext = getattr(certs, scenario.cert)
    return RecordingServer(platform(), ssl_context=context, url_host=scenario.url_host)


def profile_for(url: str, ca_bundle: str | None, scheme: AuthScheme) -> Profile:
    return Profile(name="tls", url=url, api_key=KEY, auth_scheme=scheme, ca_bundle=ca_bundle)


async def call_async(profile: Profile) -> None:
    with anyio.fail_after(LIMIT):
        async with KneoClient(profile, retry_policy=FAST) as client:
            await client.platform.runs.create(run_of("tls"))


def call_blocking(profile: Profile) -> None:
    with SyncKneoClient(profile, retry_policy=FAST) as client:
        client.platform.runs.create(run_of("tls"))


def check_outcome(
    server: RecordingServer, scenario: Scenario, error: BaseException | None, scheme: AuthScheme
) -> None:
    decrypted = sum(len(data) for data in server.received)
    if scenario.succeeds:
        assert error is None, f"{scenario.name}: {error!r}"
        TALLY.successes += 1
        [request] = server.requests
        sent = request.header("authorization") or request.header("x-kneo-api-key") or ""
        assert KEY in sent, "the key did not arrive"
        assert scheme.value == ("bearer" if sent.startswith("Bearer") else "kneo_api_key")
        return
    TALLY.failures += 1
    if error is None:
        TALLY.unexpected_successes += 1
    TALLY.decrypted_after_failure += len(server.requests)
    TALLY.handshakes_per_failure = max(TALLY.handshakes_per_failure, len(server.handshake_failures))
    assert isinstance(error, KneoTLSError), f"{scenario.name}: {error!r}"
    assert (server.requests, decrypted) == ([], 0), "application bytes after a failed handshake"
    assert server.handshake_failures, "the server saw no handshake"
    assert KEY not in repr(error)
    assert KEY not in str(error)


@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
@pytest.mark.anyio
async def test_tls_scenarios_on_the_async_client(
    certs: Certificates, scenario: Scenario, scheme: AuthScheme, anyio_backend: str
) -> None:
    ca = certs.ca_bundle if scenario.trust_ca else None
    with serving(server_for(certs, scenario)) as server:
        error: BaseException | None = None
        try:
            await call_async(profile_for(server.url, ca, scheme))
        except KneoTLSError as exc:
            error = exc
    check_outcome(server, scenario, error, scheme)


@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_tls_scenarios_on_the_blocking_client(
    certs: Certificates, scenario: Scenario, scheme: AuthScheme
) -> None:
    ca = certs.ca_bundle if scenario.trust_ca else None
    with serving(server_for(certs, scenario)) as server:
        error: BaseException | None = None
        try:
            call_blocking(profile_for(server.url, ca, scheme))
        except KneoTLSError as exc:
            error = exc
    check_outcome(server, scenario, error, scheme)


def test_tls_figure(figure: Callable[[str, str], None]) -> None:
    """Runs after the scenario tests of this module (pytest keeps file order)."""
    runs = TALLY.successes + TALLY.failures
    if runs == 0:
        pytest.skip("the scenario tests did not run (deselected)")
    figure(
        "T37",
        f"{len(SCENARIOS)} scenarios x {len(DRIVERS)} drivers x {len(AuthScheme)} auth modes "
        f"= {runs} calls: unexpected successes {TALLY.unexpected_successes}, requests "
        f"decrypted after a failed verification {TALLY.decrypted_after_failure}, "
        f"handshakes per failing call <= {TALLY.handshakes_per_failure}",
    )
    assert TALLY.unexpected_successes == TALLY.decrypted_after_failure == 0


def test_a_connect_error_caused_by_tls_is_a_tls_failure_however_it_was_re_raised() -> None:
    """httpcore2's pool re-raises ``from None``: the SSL error is only the context."""
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    for chain in ("cause", "context", "context of a cause"):
        error = httpcore2.ConnectError("could not connect")
        if chain == "cause":
            error.__cause__ = verify
        elif chain == "context":
            error.__context__ = verify
            error.__suppress_context__ = True
        else:
            middle = OSError("broken")
            middle.__cause__ = verify
            error.__context__ = middle
        assert failure_kind(error) is FailureKind.TLS, chain
    assert failure_kind(httpcore2.ConnectError("refused")) is FailureKind.CONNECT


# -- opting out is explicit and stays with its client --------------------------------------


def unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.mark.anyio
async def test_an_unverified_context_is_not_inherited_by_other_async_clients(
    certs: Certificates, anyio_backend: str
) -> None:
    with (
        anyio.fail_after(LIMIT),
        serving(RecordingServer(platform(), certs.localhost, url_host="localhost")) as server,
    ):
        profile = profile_for(server.url, None, AuthScheme.BEARER)
        trusting = profile_for(server.url, certs.ca_bundle, AuthScheme.BEARER)
        async with (
            KneoClient(profile, retry_policy=ONE_TRY, ssl_context=unverified_context()) as lax,
            KneoClient(profile, retry_policy=ONE_TRY) as default,
            KneoClient(trusting, retry_policy=ONE_TRY) as strict,
        ):
            for _ in range(2):  # the lax client's pooled connection must not serve the others
                await lax.platform.runs.create(run_of("lax"))
                with pytest.raises(KneoTLSError):
                    await default.platform.runs.create(run_of("default"))
                await strict.platform.runs.create(run_of("strict"))
    assert sum(b'"client":"default"' in r.body for r in server.requests) == 0
    assert len(server.requests) == 4


def test_an_unverified_context_is_not_inherited_by_other_blocking_clients(
    certs: Certificates, figure: Callable[[str, str], None]
) -> None:
    with serving(RecordingServer(platform(), certs.localhost, url_host="localhost")) as server:
        profile = profile_for(server.url, None, AuthScheme.BEARER)
        lax = SyncKneoClient(profile, retry_policy=ONE_TRY, ssl_context=unverified_context())
        default = SyncKneoClient(profile, retry_policy=ONE_TRY)
        with lax, default:
            for _ in range(2):
                lax.platform.runs.create(run_of("lax"))
                with pytest.raises(KneoTLSError):
                    default.platform.runs.create(run_of("default"))
    assert len(server.requests) == 2
    figure(
        "T37",
        "opt-out (an explicit unverified ssl_context) next to a "
        "default and a CA-trusting client, 3 drivers: other clients inheriting the disabled "
        "verification 0",
    )


# -- the setting itself --------------------------------------------------------------------


def test_the_ca_bundle_context_verifies_with_tls_1_2_or_later(certs: Certificates) -> None:
    for context in (tls_context(certs.ca_bundle), httpcore2.default_ssl_context()):
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True


def test_ca_bundle_comes_from_toml_env_or_keyword(
    certs: Certificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(RecordingServer(platform(), certs.localhost, url_host="localhost")) as server:
        config = tmp_path / "client.toml"
        bundle = certs.ca_bundle
        config.write_text(
            f'[default]\nurl = "{server.url}"\napi_key = "{KEY}"\nca_bundle = "{bundle}"\n'
        )
        monkeypatch.delenv(ENV_CA_BUNDLE, raising=False)
        assert load_profile(config_file=config).ca_bundle == bundle
        call_blocking(load_profile(config_file=config))
        missing = tmp_path / "none.toml"
        monkeypatch.setenv(ENV_CA_BUNDLE, bundle)
        call_blocking(load_profile(config_file=missing, url=server.url, api_key=KEY))
        monkeypatch.delenv(ENV_CA_BUNDLE)
        with SyncKneoClient.from_profile(
            config_file=missing, url=server.url, api_key=KEY, ca_bundle=bundle
        ) as client:
            client.platform.runs.create(run_of("keyword"))
            assert "ca_bundle=" in repr(client.profile)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "content", [None, b"", b"not a certificate\n"], ids=["missing", "empty", "garbage"]
)
def test_an_unusable_ca_bundle_fails_when_the_client_is_built(
    tmp_path: Path, content: bytes | None, network_guard_installed: NetworkGuard
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    profile = profile_for("https://localhost:8443", str(path), AuthScheme.BEARER)
    for build in (SyncKneoClient, KneoClient):
        with pytest.raises(KneoConfigurationError, match="ca_bundle") as caught:
            build(profile)
        assert KEY not in str(caught.value)
    assert network_guard_installed.connects == 0


@pytest.mark.parametrize("value", ["", "  ", "ca\x00.pem", 42])
def test_a_ca_bundle_that_is_not_a_path_is_refused_by_the_profile(value: Any) -> None:
    with pytest.raises(ProfileError, match="ca_bundle"):
        Profile(name="p", url="https://localhost", api_key=KEY, ca_bundle=value)
