"""Calls through real proxies on loopback: an HTTP proxy (forwarding and CONNECT) and a SOCKS5
proxy (``tests/proxy_server.py``), on asyncio, trio and the blocking client.

The platform is reached by a name only the proxies resolve (``kneo.proxy-only.test``): the
network guard fails a test whose client looks that name up itself, so every passing call
through a proxy proves the client left name resolution to the proxy (socks5:// included:
httpcore2 sends the name). The https target's certificate names that host and comes from a
fresh trustme CA, which the profile's ``ca_bundle`` (or the caller's ``ssl_context``) trusts:
the target's TLS runs inside the tunnel exactly as without a proxy, verification included.

Covered: the matrix proxy kind x target scheme x flavour with Basic/RFC 1929 credentials;
407 answered to a forwarded request and to a CONNECT, a SOCKS5 password refused, a proxy that
refuses the connection; the environment's proxies (on by default, NO_PROXY, trust_env=False)
against an explicit proxy (keyword, profile); SOCKS without the extra installed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import ssl
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
import pytest
import trustme

from kneo_client import KneoClient, SyncKneoClient
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.testing import Emulator, memory_handler, serve_emulator
from kneo_proto import (
    KneoConfigurationError,
    KneoError,
    KneoProxyError,
    KneoTLSError,
    Profile,
    ProxyPlan,
    RetryPolicy,
)
from tests.loopback import closed_port_url
from tests.proxy_server import LoopbackProxy, running
from tests.support.socket_subject import (  # noqa: F401 - fixtures: flavour, anyio_backend
    Flavour,
    backend_fixture,
    flavour_fixture,
)
from tests.support.tls import RecordingServer, serving

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]

KEY = "kneo-proxy-test-key-0123456789"
NAME = "kneo.proxy-only.test"  # resolved by the test proxies alone
USER, PASSWORD = "alice", "pr0xy-p@ss:w/rd"  # percent-encoded in the URL
LIMIT = 20.0  # seconds any one call may take (pytest-timeout cannot stop trio)
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none leak in from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@dataclass(frozen=True)
class CA:
    bundle: str
    server: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.bundle)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    authority = trustme.CA()
    bundle = tmp_path_factory.mktemp("proxy-ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(NAME).configure_cert(server)
    return CA(str(bundle), server)


@dataclass
class Targets:
    """The platform (the emulator) over plain http (at 127.0.0.1) and over https (a
    certificate for NAME)."""

    emulator: Emulator
    http_port: int
    https: RecordingServer

    def url(self, scheme: str, host: str = NAME) -> str:
        port = self.http_port if scheme == "http" else self.https.port
        return f"{scheme}://{host}:{port}"

    def profile(self, scheme: str, host: str = NAME, **fields: Any) -> Profile:
        # Plain http to a name that is not loopback needs the opt-in (the proxy is loopback).
        insecure = scheme == "http" and host == NAME
        url = self.url(scheme, host)
        return Profile(name="proxied", url=url, api_key=KEY, allow_insecure_http=insecure, **fields)

    @property
    def requests(self) -> int:
        return sum(self.emulator.counters.requests.values())


@pytest.fixture
def targets(ca: CA) -> Iterator[Targets]:
    emulator = Emulator(api_key=KEY)
    https = RecordingServer(memory_handler(emulator), ca.server, url_host=NAME)
    with serve_emulator(emulator) as http, serving(https):
        yield Targets(emulator, int(http.url.rsplit(":", 1)[1]), https)


Kind = Literal["http", "socks5"]


def new_proxy(kind: Kind, credentials: bool = True) -> LoopbackProxy:
    pair = (USER, PASSWORD) if credentials else None
    return LoopbackProxy(kind=kind, hosts=frozenset({NAME}), credentials=pair)


@dataclass
class Outcome:
    error: KneoError | None
    plan: ProxyPlan | None


async def list_runs(flavour: Flavour, profile: Profile, **options: Any) -> Outcome:
    """``runs.list()`` on a fresh client of ``flavour``; what it raised is returned."""
    options.setdefault("retry_policy", FAST)
    with anyio.fail_after(LIMIT):
        if flavour == "blocking":
            blocking = partial(_list_runs_blocking, profile, options)
            return await anyio.to_thread.run_sync(blocking, abandon_on_cancel=True)
        async with KneoClient(profile, **options) as client:
            plan = client._transport.proxy_plan
            try:
                await client.platform.runs.list()
            except KneoError as exc:
                return Outcome(exc, plan)
            return Outcome(None, plan)


def _list_runs_blocking(profile: Profile, options: dict[str, Any]) -> Outcome:
    with SyncKneoClient(profile, **options) as client:
        plan = client._transport.proxy_plan
        try:
            client.platform.runs.list()
        except KneoError as exc:
            return Outcome(exc, plan)
        return Outcome(None, plan)


# -- the matrix: proxy kind x target scheme (x flavour) ----------------------------------------

# (proxy server, proxy URL scheme, target scheme, what the proxy is asked)
ROUTES: list[tuple[Kind, str, str, str]] = [
    ("http", "http", "http", "forward"),
    ("http", "http", "https", "CONNECT"),
    ("socks5", "socks5", "http", "SOCKS5"),
    ("socks5", "socks5", "https", "SOCKS5"),
    ("socks5", "socks5h", "http", "SOCKS5"),
    ("socks5", "socks5h", "https", "SOCKS5"),
]


@pytest.mark.parametrize(("kind", "scheme", "target", "asked"), ROUTES)
async def test_a_call_goes_through_the_proxy_which_alone_resolves_the_name(
    flavour: Flavour, targets: Targets, ca: CA, kind: Kind, scheme: str, target: str, asked: str
) -> None:
    with running(new_proxy(kind)) as proxy:
        url = proxy.proxy_url(scheme, USER, PASSWORD)
        outcome = await list_runs(flavour, targets.profile(target, ca_bundle=ca.bundle), proxy=url)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.plan is not None
    assert outcome.plan.proxy is not None
    assert outcome.plan.proxy.url == f"{scheme}://127.0.0.1:{proxy.port}"
    assert targets.requests == 1
    (seen,) = proxy.asked
    assert seen.auth == "ok"
    port = targets.url(target).rsplit(":", 1)[1]
    if asked == "forward":
        assert seen.method == "GET"
        assert seen.target.startswith(f"http://{NAME}:{port}/v1/runs?")
    elif asked == "CONNECT":
        assert (seen.method, seen.target) == ("CONNECT", f"{NAME}:{port}")
        (tunnelled,) = targets.https.requests
        assert tunnelled.header("proxy-authorization") is None  # the proxy's, not the platform's
        assert tunnelled.header("authorization") == f"Bearer {KEY}"
    else:
        # socks5:// as socks5h://: httpcore2 sends the name, the proxy resolves it.
        assert (seen.target, seen.address_type) == (f"{NAME}:{port}", "domain")


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_tls_inside_the_tunnel_is_verified_as_without_a_proxy(
    flavour: Flavour, targets: Targets, ca: CA, kind: Kind
) -> None:
    """The system trust store does not hold the test CA: refused, then accepted through the
    caller's ``ssl_context`` (instead of ``ca_bundle``)."""
    scheme = "http" if kind == "http" else "socks5h"
    with running(new_proxy(kind)) as proxy:
        url = proxy.proxy_url(scheme, USER, PASSWORD)
        refused = await list_runs(flavour, targets.profile("https"), proxy=url)
        context = ca.client_context()
        accepted = await list_runs(
            flavour, targets.profile("https"), proxy=url, ssl_context=context
        )
    assert isinstance(refused.error, KneoTLSError), repr(refused.error)
    assert refused.error.attempts == 1
    assert accepted.error is None, repr(accepted.error)
    assert targets.requests == 1


# -- the proxy says no ------------------------------------------------------------------------


@contextlib.contextmanager
def socks_refusal_leak(expected: bool) -> Iterator[list[warnings.WarningMessage]]:
    """httpcore2 (2.17) raises a refused SOCKS5 handshake without closing its stream to the
    proxy: the socket lingers until garbage collection (ADR 0013). Collect it here, where it
    happens, so that its ``ResourceWarning`` is not blamed on a later test."""
    if not expected:
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            yield caught
        finally:
            gc.collect()


# (proxy server, URL scheme, target, credentials offered, proxy status, hint)
REFUSALS: list[tuple[Kind, str, str, str | None, int | None, str]] = [
    ("http", "http", "http", "wrong", 407, "check the user name and password"),
    ("http", "http", "https", "wrong", 407, "check the user name and password"),
    ("http", "http", "https", None, 407, "USER:PASSWORD@127.0.0.1"),
    ("socks5", "socks5h", "https", "wrong", None, "Invalid username/password"),
]


@pytest.mark.parametrize(("kind", "scheme", "target", "offered", "status", "hint"), REFUSALS)
async def test_a_proxy_refusing_the_credentials_is_a_proxy_error_never_retried(
    flavour: Flavour,
    targets: Targets,
    ca: CA,
    kind: Kind,
    scheme: str,
    target: str,
    offered: str | None,
    status: int | None,
    hint: str,
) -> None:
    with running(new_proxy(kind)) as proxy, socks_refusal_leak(kind == "socks5") as leaked:
        url = proxy.proxy_url(scheme, None if offered is None else USER, offered or "")
        outcome = await list_runs(flavour, targets.profile(target, ca_bundle=ca.bundle), proxy=url)
    assert all(
        issubclass(w.category, ResourceWarning) and "unclosed" in str(w.message) for w in leaked
    ), [str(w.message) for w in leaked]
    error = outcome.error
    assert isinstance(error, KneoProxyError), repr(error)
    assert (error.proxy_status, error.attempts, error.kind) == (status, 1, "proxy")
    assert error.proxy == f"{scheme}://127.0.0.1:{proxy.port}"
    assert f"{error.proxy} (from keyword proxy=)" in str(error)
    assert hint in str(error)
    assert error.status == (407 if target == "http" else None)  # an answer, or a tunnel refused
    assert len(proxy.asked) == 1
    assert targets.requests == 0
    assert "wrong" not in str(error)
    assert "wrong" not in repr(error)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_proxy_refusing_the_connection_is_named_not_the_target(
    flavour: Flavour, targets: Targets, scheme: str
) -> None:
    """Nothing was sent, so it is retried (a PATCH would be too): three attempts."""
    url = closed_port_url().replace("http", scheme, 1)
    outcome = await list_runs(flavour, targets.profile("https"), proxy=url)
    error = outcome.error
    assert isinstance(error, KneoProxyError), repr(error)
    assert (error.attempts, error.kind, error.proxy_status) == (3, "proxy", None)
    assert str(error).startswith(f"GET /v1/runs: could not connect to the proxy {url}")
    assert NAME not in str(error)


# -- which proxy: the environment, NO_PROXY, trust_env, explicit settings ---------------------

# (case, environment (A/B stand for the two proxies' URLs), profile fields, client options,
# which proxy carries the call: "A", "B" or None for direct)
CHOICES: list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any], str | None]] = [
    ("HTTP_PROXY on by default", {"HTTP_PROXY": "A"}, {}, {}, "A"),
    ("lower case wins", {"http_proxy": "B", "HTTP_PROXY": "A"}, {}, {}, "B"),
    ("ALL_PROXY", {"ALL_PROXY": "A"}, {}, {}, "A"),
    ("NO_PROXY range", {"HTTP_PROXY": "A", "NO_PROXY": "127.0.0.0/8"}, {}, {}, None),
    (
        "NO_PROXY host:port",
        {"HTTP_PROXY": "A", "no_proxy": "x.test,127.0.0.1:{port}"},
        {},
        {},
        None,
    ),
    ("trust_env=False", {"HTTP_PROXY": "A"}, {}, {"trust_env": False}, None),
    ("profile trust_env off", {"HTTP_PROXY": "A"}, {"trust_env": False}, {}, None),
    ("keyword proxy wins", {"HTTP_PROXY": "A", "NO_PROXY": "*"}, {}, {"proxy": "B"}, "B"),
    ("profile proxy wins", {"HTTP_PROXY": "A"}, {"proxy": "B"}, {}, "B"),
    ("keyword over profile", {}, {"proxy": "A"}, {"proxy": "B"}, "B"),
    ("trust_env=False keeps it", {}, {"proxy": "B"}, {"trust_env": False}, "B"),
]


@pytest.mark.parametrize(
    ("environment", "fields", "options", "carrier"),
    [case[1:] for case in CHOICES],
    ids=[case[0] for case in CHOICES],
)
async def test_the_proxy_is_chosen_as_httpx_and_requests_users_expect(
    flavour: Flavour,
    targets: Targets,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    fields: dict[str, Any],
    options: dict[str, Any],
    carrier: str | None,
) -> None:
    with running(new_proxy("http", False)) as a, running(new_proxy("http", False)) as b:
        urls = {"A": a.proxy_url(), "B": b.proxy_url()}

        def fill(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            return urls.get(value, value.replace("{port}", str(targets.http_port)))

        for name, value in environment.items():
            monkeypatch.setenv(name, fill(value))
        profile = targets.profile("http", "127.0.0.1", **{k: fill(v) for k, v in fields.items()})
        outcome = await list_runs(flavour, profile, **{k: fill(v) for k, v in options.items()})
    assert outcome.error is None, repr(outcome.error)
    assert outcome.plan is not None
    assert (outcome.plan.proxy and outcome.plan.proxy.url) == (carrier and urls[carrier])
    assert (len(a.asked), len(b.asked)) == (int(carrier == "A"), int(carrier == "B"))
    assert targets.requests == 1


# -- SOCKS without its extra ------------------------------------------------------------------


def test_a_socks_proxy_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)  # as if it were not installed
    profile = Profile(name="p", url="https://kneo.example.com", api_key=KEY)
    for transport in (Transport, SyncTransport):
        with pytest.raises(KneoConfigurationError) as caught:
            transport(profile, proxy="socks5h://u:hidden@127.0.0.1:1080")
        assert "pip install 'kneo-client[socks]'" in str(caught.value)
        assert "socks5h://127.0.0.1:1080 (from keyword proxy=)" in str(caught.value)
        assert "hidden" not in str(caught.value)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(KneoConfigurationError, match=r"\(from ALL_PROXY\) is a SOCKS proxy"):
        Transport(profile)


@pytest.mark.parametrize(
    "password", [b"s3cret", b"a) timeouts={'x': 1} b", b"quote'\\\"", b"\xff\xfe"]
)
def test_httpcore2s_socks_trace_lines_lose_the_credentials(password: bytes) -> None:
    from kneo_drivers._proxy import MaskSocksAuth

    message = (
        "setup_socks5_connection.started stream=<S> host='kneo.proxy-only.test' port=443 "
        f"auth={(b'alice', password)!r} timeouts={{'connect': 5.0}}"
    )
    record = logging.makeLogRecord({"msg": message, "name": "httpcore2.socks"})
    assert MaskSocksAuth().filter(record)
    assert record.msg == (
        "setup_socks5_connection.started stream=<S> host='kneo.proxy-only.test' port=443 "
        "auth=<redacted> timeouts={'connect': 5.0}"
    )
    cut = logging.makeLogRecord({"msg": f"x auth={(b'alice', password)!r}"})
    MaskSocksAuth().filter(cut)
    assert cut.msg == "x auth=<redacted>"
