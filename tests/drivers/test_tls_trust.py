"""T37 (trust): which CAs a client trusts under each setting, and how to change it.

Two fresh trustme CAs stand in for every trust store: ``ours`` issued the certificate the
loopback server presents, ``theirs`` plays whatever the other settings trust. Every case
runs on asyncio, trio and blocking and makes one keyed POST; a refusal must be a
``KneoTLSError`` after one attempt (never retried) with no request decrypted by the server.

- Default (no setting): httpcore2 2.17's default context. ``SSL_CERT_FILE`` (else
  ``SSL_CERT_DIR``; empty counts as unset) replaces the system store; neither: the system
  store, which does not hold a fresh CA. The variables are read when the client is built.
- ``ca_bundle`` (profile, ``KNEO_CA_BUNDLE``): the bundle only, even where ``SSL_CERT_*``
  names another CA. ``ssl_context=`` wins over ``ca_bundle``. A caller's httpx client keeps
  its own settings, and the profile's ``ca_bundle`` is not applied to it.
- ``verify=False`` (a keyword only): any certificate, one warning per client, no other
  client affected; contradicting settings are refused before anything is sent.

Nothing depends on the machine's trust store beyond "a fresh CA is not in it": every test
unsets ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` and ``KNEO_CA_BUNDLE`` first.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from secrets import token_hex
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import httpcore2
import httpx
import pytest

from kneo_client import KneoClient, SyncKneoClient, load_profile
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.testing import Emulator, memory_handler
from kneo_drivers._transport import tls_context, unverified_context
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import (
    ENV_CA_BUNDLE,
    KneoConfigurationError,
    KneoError,
    KneoTLSError,
    Profile,
    Request,
    Response,
    RetryPolicy,
)
from kneo_proto.models import RunCreateRequestDict
from tests.network_guard import NetworkGuard
from tests.support.socket_subject import (
    Flavour,
    backend_fixture,  # noqa: F401 - a fixture
    flavour_fixture,  # noqa: F401 - a fixture
)
from tests.support.tls import RecordingServer, serving
from tests.support.trust_store import PrivateCA, private_ca

pytestmark = [pytest.mark.plan("T37"), pytest.mark.anyio, pytest.mark.timeout(60)]

KEY = "kneo_canary_" + token_hex(18)
LIMIT = 10.0  # seconds any one call may take (pytest-timeout cannot stop trio)
SETTLE = 2.0  # seconds the server may take to record a failed handshake
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)  # 3 attempts: a refusal must use 1
TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", ENV_CA_BUNDLE)


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return private_ca(tmp_path_factory.mktemp("ours"))


@pytest.fixture(scope="module")
def theirs(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return private_ca(tmp_path_factory.mktemp("theirs"))


@pytest.fixture(autouse=True)
def no_trust_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's environment names no CA here (this one sets ``SSL_CERT_FILE``)."""
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def platform() -> Callable[[Request], Response]:
    """The emulator, answering ``RecordingServer``'s requests."""
    return memory_handler(Emulator(api_key=KEY))


@pytest.fixture
def server(ours: PrivateCA) -> Iterator[RecordingServer]:
    """The emulator on 127.0.0.1 presenting ``ours``'s ``localhost`` certificate."""
    with serving(RecordingServer(platform(), ours.certs.localhost, url_host="localhost")) as s:
        yield s


def profile_for(url: str, ca_bundle: str | None = None) -> Profile:
    return Profile(name="trust", url=url, api_key=KEY, ca_bundle=ca_bundle)


class Flavoured:
    """A client of one flavour; ``call`` makes one ``runs.create`` and returns what it
    raised (a ``KneoError``) or None. The blocking client is called in a worker thread."""

    def __init__(self, flavour: Flavour, profile: Profile, **options: Any) -> None:
        options.setdefault("retry_policy", FAST)
        self.client: KneoClient | SyncKneoClient
        if flavour == "blocking":
            self.client = SyncKneoClient(profile, **options)
        else:
            self.client = KneoClient(profile, **options)

    async def call(self) -> KneoError | None:
        body: RunCreateRequestDict = {"spec_id": "my-spec"}
        try:
            with anyio.fail_after(LIMIT):
                if isinstance(self.client, SyncKneoClient):
                    create = self.client.platform.runs.create
                    await anyio.to_thread.run_sync(create, body, abandon_on_cancel=True)
                else:
                    await self.client.platform.runs.create(body)
        except KneoError as exc:
            return exc
        return None

    async def __aenter__(self) -> Flavoured:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(self.client, SyncKneoClient):
            self.client.close()
        else:
            await self.client.aclose()


async def outcome(flavour: Flavour, profile: Profile, **options: Any) -> KneoError | None:
    async with Flavoured(flavour, profile, **options) as client:
        return await client.call()


def accepted(error: KneoError | None, server: RecordingServer) -> None:
    assert error is None, repr(error)
    assert server.requests, "the server saw no request"


def handshake_failures(server: RecordingServer, expected: int) -> list[str]:
    """The server's failed handshakes, once ``expected`` are in (its threads record them on
    their own, maybe after the client gave up) or ``SETTLE`` seconds passed."""
    until = time.monotonic() + SETTLE
    while len(server.handshake_failures) < expected and time.monotonic() < until:
        time.sleep(0.005)
    return server.handshake_failures


def refused(error: KneoError | None, server: RecordingServer) -> None:
    assert isinstance(error, KneoTLSError), repr(error)
    assert error.attempts == 1, "a verification failure was retried"
    assert len(handshake_failures(server, 1)) == 1
    assert server.requests == [], "a request was decrypted after a failed verification"
    assert KEY not in str(error)


# -- the default: httpcore2's context, which honours SSL_CERT_FILE, then SSL_CERT_DIR ---------

# (what the environment names, whether ``ours`` is then trusted)
ENVIRONMENTS = {
    "nothing set (the system store)": ({}, False),
    "SSL_CERT_FILE names the CA": ({"SSL_CERT_FILE": "ours.file"}, True),
    "SSL_CERT_DIR holds the CA": ({"SSL_CERT_DIR": "ours.directory"}, True),
    "SSL_CERT_FILE wins over SSL_CERT_DIR": (
        {"SSL_CERT_FILE": "theirs.file", "SSL_CERT_DIR": "ours.directory"},
        False,
    ),
    "an empty SSL_CERT_FILE counts as unset": (
        {"SSL_CERT_FILE": "", "SSL_CERT_DIR": "ours.directory"},
        True,
    ),
}


@pytest.mark.parametrize("case", list(ENVIRONMENTS))
async def test_the_default_trusts_what_ssl_cert_file_or_dir_names_else_the_system_store(
    case: str,
    flavour: Flavour,
    ours: PrivateCA,
    theirs: PrivateCA,
    server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variables, trusted = ENVIRONMENTS[case]
    cas = {"ours": ours, "theirs": theirs}
    for name, where in variables.items():
        ca, _, field = where.partition(".")
        monkeypatch.setenv(name, getattr(cas[ca], field) if ca else "")
    error = await outcome(flavour, profile_for(server.url))
    (accepted if trusted else refused)(error, server)


async def test_ssl_cert_file_is_read_when_the_client_is_built(
    flavour: Flavour, ours: PrivateCA, server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kneo-client builds the default context once per client (httpcore2 would on every new
    connection, tens of ms of CPU each): a later change of SSL_CERT_FILE does not apply."""
    async with Flavoured(flavour, profile_for(server.url)) as client:
        monkeypatch.setenv("SSL_CERT_FILE", ours.file)
        refused(await client.call(), server)
    monkeypatch.setenv("SSL_CERT_FILE", ours.file)
    async with Flavoured(flavour, profile_for(server.url)) as client:
        accepted(await client.call(), server)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_an_unloadable_ssl_cert_variable_is_a_configuration_error_naming_it(
    variable: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    monkeypatch.setenv(variable, missing)
    profile = profile_for("https://kneo.example.com")
    for build in (Transport, SyncTransport):
        with pytest.raises(KneoConfigurationError, match=variable) as caught:
            build(profile)
        assert missing in str(caught.value)


def test_ssl_cert_file_and_dir_replace_the_system_store(
    ours: PrivateCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ours.file)
    from_file = httpcore2.default_ssl_context()
    assert [ca["subject"] for ca in from_file.get_ca_certs()] == [_subject(ours.file)]
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", ours.directory)
    # A directory is read lazily, one CA per lookup: no bundle was loaded beside it.
    assert httpcore2.default_ssl_context().cert_store_stats()["x509_ca"] == 0


def _subject(ca_file: str) -> Any:
    return ssl.create_default_context(cafile=ca_file).get_ca_certs()[0]["subject"]


# -- ca_bundle: the bundle and nothing else ---------------------------------------------------


@pytest.mark.parametrize("source", ["profile", ENV_CA_BUNDLE])
async def test_ca_bundle_is_the_only_trust(
    source: str,
    flavour: Flavour,
    ours: PrivateCA,
    theirs: PrivateCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``theirs`` is what the default would trust (both variables name it), yet with
    ``ca_bundle`` naming ``ours`` only ``ours`` is accepted."""
    monkeypatch.setenv("SSL_CERT_FILE", theirs.file)
    monkeypatch.setenv("SSL_CERT_DIR", theirs.directory)
    for ca, trusted in ((ours, True), (theirs, False)):
        context = ca.certs.localhost
        with serving(RecordingServer(platform(), context, url_host="localhost")) as server:
            if source == "profile":
                profile = profile_for(server.url, ca_bundle=ours.file)
            else:
                monkeypatch.setenv(ENV_CA_BUNDLE, ours.file)
                missing = tmp_path / "none.toml"
                profile = load_profile(config_file=missing, url=server.url, api_key=KEY)
                assert profile.ca_bundle == ours.file
            error = await outcome(flavour, profile)
        (accepted if trusted else refused)(error, server)


def test_the_ca_bundle_context_holds_only_the_bundle(
    ours: PrivateCA, theirs: PrivateCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", theirs.file)
    context = tls_context(ours.file)
    assert [ca["subject"] for ca in context.get_ca_certs()] == [_subject(ours.file)]


# -- ssl_context: the caller's context wins over ca_bundle ------------------------------------


async def test_an_ssl_context_wins_over_ca_bundle(
    flavour: Flavour, ours: PrivateCA, theirs: PrivateCA
) -> None:
    callers = ssl.create_default_context(cafile=theirs.file)
    for ca, trusted in ((theirs, True), (ours, False)):
        context = ca.certs.localhost
        with serving(RecordingServer(platform(), context, url_host="localhost")) as server:
            profile = profile_for(server.url, ca_bundle=ours.file)
            error = await outcome(flavour, profile, ssl_context=callers)
        (accepted if trusted else refused)(error, server)


# -- a caller's httpx client: its own settings -------------------------------------------------


async def test_an_httpx_client_trusts_what_it_was_built_with(
    flavour: Flavour, ours: PrivateCA, theirs: PrivateCA, server: RecordingServer
) -> None:
    """httpx's default (certifi) refuses a fresh CA; a client verifying with ``ours`` is
    accepted though the profile's ``ca_bundle`` names ``theirs``: it is not applied."""
    profile = profile_for(server.url, ca_bundle=theirs.file)
    trusting = ssl.create_default_context(cafile=ours.file)
    errors = []
    for verify in (True, trusting):
        if flavour == "blocking":
            with httpx.Client(verify=verify) as sync_client:
                errors.append(await outcome(flavour, profile, http_client=sync_client))
        else:
            async with httpx.AsyncClient(verify=verify) as async_client:
                errors.append(await outcome(flavour, profile, http_client=async_client))
    assert isinstance(errors[0], KneoTLSError), repr(errors[0])
    assert errors[0].attempts == 1
    assert errors[1] is None, repr(errors[1])
    assert len(server.requests) == 1


# -- verify=False: explicit, loud, and only for its client ------------------------------------


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kneo_client.transport" and r.levelno == logging.WARNING
    ]


async def test_verify_false_accepts_any_certificate_and_warns_once_per_client(
    flavour: Flavour, ours: PrivateCA, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown CA, an expired certificate and a host it does not name, all at once."""
    expired = ours.certs.expired  # issued for localhost, served as 127.0.0.1
    with (
        caplog.at_level(logging.WARNING, logger="kneo_client.transport"),
        serving(RecordingServer(platform(), expired, url_host="127.0.0.1")) as server,
    ):
        async with Flavoured(flavour, profile_for(server.url), verify=False) as lax:
            assert await lax.call() is None
            assert await lax.call() is None
            lax.client = lax.client.with_options(timeout=5.0)  # shares the transport
            assert await lax.call() is None
    assert len(server.requests) == 3
    [warning] = warnings_in(caplog)
    assert server.url in warning
    assert "verify=False" in warning
    assert KEY not in warning


async def test_verify_false_is_not_inherited_by_other_clients(
    flavour: Flavour, ours: PrivateCA, server: RecordingServer, figure: Callable[[str, str], None]
) -> None:
    profile = profile_for(server.url)
    async with (
        Flavoured(flavour, profile, verify=False) as lax,
        Flavoured(flavour, profile) as default,
        Flavoured(flavour, profile_for(server.url, ca_bundle=ours.file)) as trusting,
    ):
        for _ in range(2):  # the lax client's pooled connection must serve no other client
            assert await lax.call() is None
            assert isinstance(await default.call(), KneoTLSError)
            assert await trusting.call() is None
    assert len(server.requests) == 4
    assert len(handshake_failures(server, 2)) == 2
    figure(
        "T37",
        f"{flavour}: verify=False next to a default and a CA-trusting client: "
        "other clients inheriting the disabled verification 0",
    )


def test_verify_false_is_a_keyword_of_from_profile_too(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    url = "https://localhost:8443"
    with SyncKneoClient.from_profile(config_file=missing, url=url, api_key=KEY, verify=False):
        pass
    with pytest.raises(KneoConfigurationError, match="ca_bundle"):
        KneoClient.from_profile(
            config_file=missing, url=url, api_key=KEY, ca_bundle="ca.pem", verify=False
        )


def _memory(request: Request) -> Response:
    return Response(200, (), b"{}")


def _pool(sync: bool) -> Any:
    return httpcore2.ConnectionPool() if sync else httpcore2.AsyncConnectionPool()


def _driver(sync: bool) -> Any:
    return MemoryDriver(_memory) if sync else AsyncMemoryDriver(_memory)


# (profile's ca_bundle, keyword options, what the error names); ``sync`` picks the client.
CONTRADICTIONS: dict[str, tuple[bool, Callable[[bool], dict[str, Any]], str]] = {
    "verify=False with ca_bundle": (True, lambda sync: {"verify": False}, "ca_bundle"),
    "verify=False with ssl_context": (
        False,
        lambda sync: {"verify": False, "ssl_context": ssl.create_default_context()},
        "ssl_context",
    ),
    "verify=False with http_client": (
        False,
        lambda sync: {"verify": False, "http_client": _pool(sync)},
        "http_client",
    ),
    "verify=False with driver": (
        False,
        lambda sync: {"verify": False, "driver": _driver(sync)},
        "driver",
    ),
    "ssl_context with http_client": (
        False,
        lambda sync: {"ssl_context": ssl.create_default_context(), "http_client": _pool(sync)},
        "http_client",
    ),
    "ssl_context with driver": (
        False,
        lambda sync: {"ssl_context": ssl.create_default_context(), "driver": _driver(sync)},
        "driver",
    ),
    "verify as a path": (False, lambda sync: {"verify": "/etc/ssl/ca.pem"}, "ca_bundle"),
}
BUILDERS: dict[str, tuple[Callable[..., Any], bool]] = {
    "Transport": (Transport, False),
    "SyncTransport": (SyncTransport, True),
    "KneoClient": (KneoClient, False),
    "SyncKneoClient": (SyncKneoClient, True),
}


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize("case", list(CONTRADICTIONS))
def test_contradictory_trust_settings_are_refused_before_anything_is_sent(
    case: str, builder: str, ours: PrivateCA, network_guard_installed: NetworkGuard
) -> None:
    with_bundle, options, named = CONTRADICTIONS[case]
    build, sync = BUILDERS[builder]
    profile = profile_for("https://localhost:8443", ours.file if with_bundle else None)
    with pytest.raises(KneoConfigurationError, match=named) as caught:
        build(profile, **options(sync))
    assert KEY not in str(caught.value)
    assert network_guard_installed.connects == 0


# -- verification stays on for every other path -----------------------------------------------


def test_every_verifying_context_requires_a_valid_certificate_for_the_host(
    ours: PrivateCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts = {"ca_bundle": tls_context(ours.file), "default": httpcore2.default_ssl_context()}
    monkeypatch.setenv("SSL_CERT_FILE", ours.file)
    contexts["SSL_CERT_FILE"] = httpcore2.default_ssl_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", ours.directory)
    contexts["SSL_CERT_DIR"] = httpcore2.default_ssl_context()
    for name, context in contexts.items():
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2, name
        assert context.verify_mode is ssl.CERT_REQUIRED, name
        assert context.check_hostname is True, name
    lax = unverified_context()
    assert (lax.verify_mode, lax.check_hostname) == (ssl.CERT_NONE, False)
    assert lax.minimum_version >= ssl.TLSVersion.TLSv1_2  # still encrypted, to whoever answers
