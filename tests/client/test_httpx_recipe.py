"""The reference's "Bring your own httpx client" recipe, run as written (placeholders filled
in) against the emulator on asyncio and on trio; ``ApiKeyAuth`` as httpx's ``auth=``; the
blocking ``SyncTransport`` over an ``httpx.Client``; and the clear error for any other
``http_client``.

The recipe is copied verbatim below (the reference's text rendering lost the indentation,
which is restored; nothing else is changed), and a test checks the copy against the
reference, so a change to the reference's recipe fails here. Running it substitutes only
its placeholders: the URL and key (``"https://kneo"``, ``"…"``) become the emulator's, and
the body ``...`` becomes two real requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore2
import httpx
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_client.core.auth import ApiKeyAuth, AuthScheme
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.testing import RunningEmulator, serve_emulator
from kneo_proto import KneoConfigurationError
from tests.client.test_reference_examples import wrap

pytestmark = pytest.mark.timeout(20)

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/kneo-client-api-reference.txt"
HEADING = "Bring your own httpx client"

BRING_YOUR_OWN_HTTPX_CLIENT_RECIPE = """\
import httpx
from kneo_client.core.auth import ApiKeyAuth, AuthScheme
from kneo_client.core.profiles import Profile
from kneo_client.core.transport import Transport

profile = Profile(name="prod", url="https://kneo", api_key="…",
                  auth_scheme=AuthScheme.BEARER, timeout=30.0)
shared = httpx.AsyncClient(
    base_url=profile.url,
    auth=ApiKeyAuth(profile.api_key, profile.auth_scheme),
    timeout=profile.timeout,
    limits=httpx.Limits(max_keepalive_connections=20, max_connections=100),
)
try:
    async with Transport(profile, http_client=shared) as t:
        # t.aclose() will NOT close `shared`.
        ...
finally:
    await shared.aclose()
"""

BODY = """\
resp = await t.request("GET", "/v1/runs")
direct = await shared.get("/v1/runs")  # ApiKeyAuth as httpx's auth=
"""


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    with serve_emulator() as served:
        yield served


def reference_recipe() -> list[str]:
    """The recipe's lines as the reference renders them (unindented), up to its last one."""
    if not REFERENCE.exists():
        pytest.skip(f"the reference is not at {REFERENCE}")
    text = REFERENCE.read_text(encoding="utf-8").split(f"\n{HEADING}\n", 1)[1]
    start = text.index("import httpx\n")
    end = text.index("await shared.aclose()\n", start) + len("await shared.aclose()")
    return text[start:end].splitlines()


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def filled_in(running: RunningEmulator) -> str:
    """The recipe with its placeholders replaced, and only those."""
    recipe = replace_once(BRING_YOUR_OWN_HTTPX_CLIENT_RECIPE, '"https://kneo"', f'"{running.url}"')
    recipe = replace_once(recipe, 'api_key="…"', f'api_key="{running.api_key}"')
    indent = " " * 8
    body = "".join(indent + line + "\n" for line in BODY.splitlines())
    return replace_once(recipe, f"{indent}...\n", body)


def test_the_recipe_is_the_references() -> None:
    ours = [line.strip() for line in BRING_YOUR_OWN_HTTPX_CLIENT_RECIPE.splitlines()]
    assert [line for line in ours if line] == reference_recipe()


@pytest.mark.anyio
async def test_bring_your_own_httpx_client_recipe(
    running: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe runs; the transport never closes ``shared``: only its ``finally`` does."""
    closed: list[httpx.AsyncClient] = []
    aclose = httpx.AsyncClient.aclose

    async def recording_aclose(self: httpx.AsyncClient) -> None:
        closed.append(self)
        await aclose(self)

    monkeypatch.setattr(httpx.AsyncClient, "aclose", recording_aclose)
    result = await wrap(filled_in(running))()
    assert result is not None
    assert result["resp"].status_code == result["direct"].status_code == 200
    assert result["resp"].json() == result["direct"].json()
    assert result["resp"].json()["total"] == 0
    assert closed == [result["shared"]]
    assert result["shared"].is_closed
    assert running.emulator.counters.requests["/v1/runs"] == 2


# -- ApiKeyAuth as httpx's auth= --------------------------------------------------------------

HEADERS = {AuthScheme.BEARER: "authorization", AuthScheme.KNEO_API_KEY: "x-kneo-api-key"}


@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_api_key_auth_authenticates_an_httpx_client(
    running: RunningEmulator, scheme: AuthScheme
) -> None:
    with httpx.Client(base_url=running.url, auth=ApiKeyAuth(running.api_key, scheme)) as http:
        accepted = http.get("/v1/runs")
        refused = http.get("/v1/runs", auth=ApiKeyAuth("not-the-key", scheme))
    assert (accepted.status_code, refused.status_code) == (200, 401)
    value = accepted.request.headers[HEADERS[scheme]]
    assert value.endswith(running.api_key)
    assert value == ApiKeyAuth(running.api_key, scheme).header()[1]


@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.anyio
async def test_api_key_auth_authenticates_an_async_httpx_client(
    running: RunningEmulator, scheme: AuthScheme
) -> None:
    auth = ApiKeyAuth(running.api_key, scheme)
    async with httpx.AsyncClient(base_url=running.url, auth=auth) as http:
        assert (await http.get("/v1/runs")).status_code == 200
        assert (await http.get("/v1/runs", auth=None)).status_code == 401


# -- SyncTransport over an httpx.Client -------------------------------------------------------


def test_sync_transport_over_a_caller_httpx_client_leaves_it_open(
    running: RunningEmulator,
) -> None:
    with httpx.Client() as http:
        with SyncTransport(running.profile(), http_client=http) as t:
            created = t.request("POST", "/v1/runs", json={"spec_id": "my-spec"})
            listed = t.request("GET", "/v1/runs", params={"limit": 1})
        assert created.status_code == 201
        assert listed.json()["total"] == 1
        assert not http.is_closed
        assert http.get(f"{running.url}/v1/healthz").status_code == 200
    assert created.idempotency_key is not None
    assert running.emulator.counters.executions[created.idempotency_key] == 1


# -- anything else is refused at once ---------------------------------------------------------

ASYNC_TAKES = "Transport(http_client=...) takes httpcore2.AsyncConnectionPool or httpx.AsyncClient"
SYNC_TAKES = "SyncTransport(http_client=...) takes httpcore2.ConnectionPool or httpx.Client"
WRONG_CLIENTS: list[tuple[type[Any], Callable[[], Any], str]] = [
    (Transport, object, f"{ASYNC_TAKES}, not builtins.object"),
    (Transport, lambda: "https://kneo", f"{ASYNC_TAKES}, not builtins.str"),
    (Transport, httpx.Client, f"{ASYNC_TAKES}, not httpx.Client: pass it to SyncTransport"),
    (
        Transport,
        httpcore2.ConnectionPool,
        f"{ASYNC_TAKES}, not httpcore2.ConnectionPool: pass it to SyncTransport",
    ),
    (
        SyncTransport,
        httpx.AsyncClient,
        f"{SYNC_TAKES}, not httpx.AsyncClient: pass it to Transport",
    ),
    (
        SyncTransport,
        httpcore2.AsyncConnectionPool,
        f"{SYNC_TAKES}, not httpcore2.AsyncConnectionPool: pass it to Transport",
    ),
    (KneoClient, httpx.Client, f"{ASYNC_TAKES}, not httpx.Client: pass it to SyncTransport"),
    (SyncKneoClient, dict, f"{SYNC_TAKES}, not builtins.dict"),
]


@pytest.mark.parametrize(("transport", "make", "message"), WRONG_CLIENTS)
def test_a_wrong_http_client_is_refused_with_the_accepted_types(
    running: RunningEmulator, transport: type[Any], make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(KneoConfigurationError) as caught:
        transport(running.profile(), http_client=make())
    assert str(caught.value) == message
