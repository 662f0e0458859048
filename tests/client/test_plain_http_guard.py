"""T38: the key goes over plain http only to loopback, checked when the client is built.

``tests/proto/test_profiles.py`` checks the rule on ``ClientConfig``; this file checks what a
user meets: every URL of the matrix, in both auth modes, with ``allow_insecure_http`` off
and on, through ``KneoClient``, ``SyncKneoClient`` and ``KneoClient.from_profile``, while the
network guard counts connects and lookups (there must be none: the decision needs no I/O).

- Loopback (``127.0.0.1``, ``127.5.5.5``, ``[::1]``, ``localhost``): always built, no
  warning; and a real call to each reaches a server listening there.
- Look-alikes (``api.kneo.invalid``, ``localhost.invalid``, ``127.0.0.1.invalid``, and
  non-loopback addresses): ``KneoInsecureTransportError`` unless the flag is on; with it, the
  client is built and logs exactly one warning, which does not hold the key.
- User info (``localhost@api.kneo.invalid``, ``user:pass@127.0.0.1``): always refused.
- https: never affected.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_client.testing import Emulator, memory_handler
from kneo_proto import (
    AuthScheme,
    KneoInsecureTransportError,
    Profile,
    ProfileError,
)
from tests.network_guard import NetworkGuard
from tests.support.tls import RecordingServer, serving

pytestmark = pytest.mark.plan("T38")

KEY = "kneo_canary_plain_http_0123456789abcdef"
LOOPBACK = [
    "http://127.0.0.1:8080",
    "http://127.5.5.5:8080",
    "http://[::1]:8080",
    "http://localhost:8080",
    "http://LOCALHOST:8080/base/",
]
LOOK_ALIKES = [
    "http://api.kneo.invalid",
    "http://localhost.invalid",
    "http://127.0.0.1.invalid",
    "http://localhost.invalid:8080",
    "http://10.0.0.1:8080",
    "http://[::2]:8080",
]
USER_INFO = [
    "http://localhost@api.kneo.invalid",
    "http://user:pass@127.0.0.1:8080",
    "https://user@api.kneo.invalid",
]
HTTPS = ["https://api.kneo.invalid", "https://127.0.0.1:8443"]
CONSTRUCTORS = ["KneoClient", "SyncKneoClient", "KneoClient.from_profile"]


@dataclass
class Tally:
    builds: int = 0
    refused: int = 0
    loopback_refused: int = 0
    warnings: int = 0
    opted_in: int = 0
    io: int = 0
    real_calls: int = 0


TALLY = Tally()


def build(constructor: str, url: str, scheme: AuthScheme, allow: bool, missing: Path) -> None:
    if constructor == "KneoClient.from_profile":
        KneoClient.from_profile(
            config_file=missing,
            url=url,
            api_key=KEY,
            auth_scheme=scheme,
            allow_insecure_http=allow,
        )
        return
    profile = Profile(
        name="plain", url=url, api_key=KEY, auth_scheme=scheme, allow_insecure_http=allow
    )
    if constructor == "KneoClient":
        KneoClient(profile)
    else:
        SyncKneoClient(profile).close()


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kneo_client.transport" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
@pytest.mark.parametrize("allow", [False, True], ids=["flag-off", "flag-on"])
@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.parametrize(
    ("url", "kind"),
    [(u, "loopback") for u in LOOPBACK]
    + [(u, "look-alike") for u in LOOK_ALIKES]
    + [(u, "user info") for u in USER_INFO]
    + [(u, "https") for u in HTTPS],
)
def test_the_plain_http_guard_decides_without_io(
    url: str,
    kind: str,
    scheme: AuthScheme,
    allow: bool,
    constructor: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    network_guard_installed: NetworkGuard,
) -> None:
    caplog.set_level(logging.DEBUG)
    missing = tmp_path / "none.toml"
    TALLY.builds += 1
    if kind == "user info":
        with pytest.raises(ProfileError, match="user info"):
            build(constructor, url, scheme, allow, missing)
        TALLY.refused += 1
    elif kind == "look-alike" and not allow:
        with pytest.raises(KneoInsecureTransportError, match="refusing to send the API key"):
            build(constructor, url, scheme, allow, missing)
        TALLY.refused += 1
    else:
        try:
            build(constructor, url, scheme, allow, missing)
        except KneoInsecureTransportError:
            TALLY.loopback_refused += kind == "loopback"
            raise
        expected = 1 if kind == "look-alike" else 0
        shown = warnings_in(caplog)
        TALLY.warnings += len(shown)
        TALLY.opted_in += expected
        assert len(shown) == expected, shown
        assert all(KEY not in message for message in shown)
    io = network_guard_installed.connects + network_guard_installed.lookups
    TALLY.io += io
    assert io == 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def loopback_servers() -> Iterator[tuple[str, str]]:
    """(listen address, URL host) for each loopback form."""
    yield "127.0.0.1", "127.0.0.1"
    yield "127.5.5.5", "127.5.5.5"
    yield "127.0.0.1", "localhost"
    if ipv6_loopback():
        yield "::1", "::1"


async def call_async(url: str) -> None:
    with anyio.fail_after(10):
        async with KneoClient(Profile(name="lo", url=url, api_key=KEY)) as client:
            await client.platform.runs.create({"spec_id": "my-spec"})


@pytest.mark.parametrize("driver", ["asyncio", "trio", "blocking"])
def test_loopback_over_plain_http_really_works(driver: str) -> None:
    for host, url_host in loopback_servers():
        platform = memory_handler(Emulator(api_key=KEY))
        server = RecordingServer(platform, host=host, url_host=url_host)
        with serving(server):
            if driver == "blocking":
                with SyncKneoClient(Profile(name="lo", url=server.url, api_key=KEY)) as client:
                    client.platform.runs.create({"spec_id": "my-spec"})
            else:
                anyio.run(call_async, server.url, backend=driver)
        assert len(server.requests) == 1, server.url
        TALLY.real_calls += 1


def test_plain_http_figure(figure: Callable[[str, str], None]) -> None:
    if not TALLY.builds:
        pytest.skip("the guard tests did not run (deselected)")
    urls = len(LOOPBACK) + len(LOOK_ALIKES) + len(USER_INFO) + len(HTTPS)
    figure(
        "T38",
        f"{urls} URLs x {len(AuthScheme)} auth modes x 2 flag settings x {len(CONSTRUCTORS)} "
        f"constructors = {TALLY.builds} client builds ({TALLY.refused} refused): connect "
        f"attempts and lookups {TALLY.io}, loopback refused by mistake "
        f"{TALLY.loopback_refused}, warnings {TALLY.warnings} for {TALLY.opted_in} opted-in "
        f"clients (one each); {TALLY.real_calls} real calls to loopback over plain http",
    )
    assert TALLY.warnings == TALLY.opted_in
