"""The clients under test on one backend, each a ``Peer`` making one ``runs.get`` or one page.

Every peer asks the canned server for the same two things over keep-alive connections:
``GET /v1/runs/run_123`` (a 0.5 KB run) and ``GET /v1/audit-events`` with the query
kneo-client sends for ``audit.list(limit=1000)`` (a 300 KB page of 1000 events). The
clients, on each backend where they exist:

- ``kneo``: ``KneoClient`` / ``SyncKneoClient``, a typed result with everything the SDK does
  (``tracing=False``: no OpenTelemetry observer, so its rows compare with and without it);
- ``kneo+no-op observer``: the same with ``observers=[lambda event: None]``, on ``runs.get``
  only: what building and handing out a call's events costs;
- ``kneo+OpenTelemetry``: the same with tracing on and no OpenTelemetry SDK configured (the
  default global no-op providers), on ``runs.get`` only, when ``opentelemetry-api`` is
  installed;
- ``httpcore2+msgspec``: a raw httpcore2 pool, then ``msgspec`` into the same Struct: the
  like-for-like floor of our own stack;
- ``httpcore2+json``: the same raw request, then ``json.loads`` into dicts;
- ``httpx+json``: an ``httpx`` client, then ``json.loads``;
- ``generated``: the client openapi-python-client generates (httpx and attrs models);
- ``http.client+json``: the standard library, blocking only: the reference.

Async pools, kneo-client's included, have ``POOL_SIZE`` connections, so the same peers serve
the concurrency cases (but for the ``runs.get``-only peers, whose ``page`` is None). Each
kneo-client peer has a client of its own. Raw requests send three fixed headers and finite
timeouts.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpcore2
import msgspec

from benchmarks.generated_client import Generated
from benchmarks.sampling import AsyncOne, SyncOne
from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_proto import endpoints
from kneo_proto.models import AuditEventListResponse, RunStatusResponse

__all__ = [
    "API_KEY",
    "GENERATED",
    "HAVE_HTTPX",
    "HAVE_OPENTELEMETRY",
    "HTTPX",
    "KNEO",
    "KNEO_OBSERVED",
    "KNEO_OTEL",
    "PAGE_DECODER",
    "PAGE_EVENTS",
    "POOL_SIZE",
    "RAW_EXTENSIONS",
    "RAW_HEADERS",
    "RAW_JSON",
    "RAW_MSGSPEC",
    "RUN_DECODER",
    "RUN_ID",
    "STDLIB",
    "AsyncRig",
    "Peer",
    "SyncRig",
    "field_of",
    "is_page",
    "is_run",
    "open_async",
    "open_sync",
]

F = TypeVar("F")

RUN_ID = "run_123"
API_KEY = "kneo_bench_key_0123456789"
POOL_SIZE = 20
PAGE_EVENTS = 1000
TIMEOUT_SECONDS = 10.0
RUN_PATH = "/v1/runs/" + RUN_ID
PAGE_TARGET = endpoints.list_audit_events(limit=PAGE_EVENTS).target  # what kneo sends
HEADERS = {
    "Accept": "application/json",
    "Authorization": "Bearer " + API_KEY,
    "User-Agent": "kneo-bench-raw",
}
RAW_HEADERS = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
RAW_EXTENSIONS: dict[str, Any] = {
    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), TIMEOUT_SECONDS)
}
RUN_DECODER = msgspec.json.Decoder(RunStatusResponse)
PAGE_DECODER = msgspec.json.Decoder(AuditEventListResponse)

KNEO = "kneo"
KNEO_OBSERVED = "kneo+no-op observer"
KNEO_OTEL = "kneo+OpenTelemetry"
RAW_MSGSPEC = "httpcore2+msgspec"
RAW_JSON = "httpcore2+json"
HTTPX = "httpx+json"
GENERATED = "generated"
STDLIB = "http.client+json"
HAVE_HTTPX = importlib.util.find_spec("httpx") is not None  # the bench extra


def _have_opentelemetry() -> bool:
    """Whether kneo-client adds its OpenTelemetry observer when tracing is on."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


HAVE_OPENTELEMETRY = _have_opentelemetry()


@dataclass(frozen=True, slots=True)
class Peer(Generic[F]):
    """One client on one backend: ``get()`` makes one ``runs.get``, ``page()`` one page
    (None: the peer is measured on ``runs.get`` alone).
    """

    client: str
    label: str
    get: F
    page: F | None


@dataclass(frozen=True, slots=True)
class SyncRig:
    """The blocking backend: kneo-client's and the raw pool by name, and every peer."""

    url: str
    kneo: SyncKneoClient
    pool: httpcore2.ConnectionPool
    peers: list[Peer[SyncOne]]


@dataclass(frozen=True, slots=True)
class AsyncRig:
    """An async backend (asyncio or trio): as ``SyncRig``."""

    url: str
    kneo: KneoClient
    pool: httpcore2.AsyncConnectionPool
    peers: list[Peer[AsyncOne]]


def field_of(value: object, name: str) -> Any:
    """``value[name]`` of a dict, else the attribute ``name`` (None when absent)."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def is_run(value: object) -> bool:
    """A completed run, whichever client decoded it."""
    return field_of(value, "run_id") is not None and field_of(value, "status") == "completed"


def is_page(value: object) -> bool:
    """A full page of audit events, whichever client decoded it."""
    return len(field_of(value, "events") or ()) == PAGE_EVENTS


def _profile(url: str) -> Profile:
    return Profile(name="bench", url=url, api_key=API_KEY)


def _kneo_variants() -> list[tuple[str, str, dict[str, Any]]]:
    """The ``runs.get``-only kneo-client peers: client name, label suffix, client options."""
    variants: list[tuple[str, str, dict[str, Any]]] = [
        (KNEO_OBSERVED, " + no-op observer", {"tracing": False, "observers": [lambda event: None]})
    ]
    if HAVE_OPENTELEMETRY:
        variants.append((KNEO_OTEL, " + OpenTelemetry (no SDK configured)", {"tracing": True}))
    return variants


def _kneo_sync_get(kneo: SyncKneoClient) -> SyncOne:
    return lambda: kneo.platform.runs.get(RUN_ID)


def _kneo_async_get(kneo: KneoClient) -> AsyncOne:
    async def get() -> object:
        return await kneo.platform.runs.get(RUN_ID)

    return get


def _kneo_sync_variants(url: str, stack: ExitStack) -> list[Peer[SyncOne]]:
    peers: list[Peer[SyncOne]] = []
    for client, suffix, options in _kneo_variants():
        kneo = stack.enter_context(
            SyncKneoClient(_profile(url), max_connections=POOL_SIZE, **options)
        )
        peers.append(Peer(client, "SyncKneoClient" + suffix, _kneo_sync_get(kneo), None))
    return peers


async def _kneo_async_variants(url: str, stack: AsyncExitStack) -> list[Peer[AsyncOne]]:
    peers: list[Peer[AsyncOne]] = []
    for client, suffix, options in _kneo_variants():
        kneo = await stack.enter_async_context(
            KneoClient(_profile(url), max_connections=POOL_SIZE, **options)
        )
        peers.append(Peer(client, "KneoClient" + suffix, _kneo_async_get(kneo), None))
    return peers


def _stdlib_peer(url: str, stack: ExitStack) -> Peer[SyncOne]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_SECONDS)
    stack.callback(conn.close)

    def fetch(target: str) -> bytes:
        conn.request("GET", target, headers=HEADERS)
        return conn.getresponse().read()

    return Peer(
        STDLIB,
        "http.client + json.loads",
        lambda: json.loads(fetch(RUN_PATH)),
        lambda: json.loads(fetch(PAGE_TARGET)),
    )


def _raw_sync_peers(url: str, pool: httpcore2.ConnectionPool) -> list[Peer[SyncOne]]:
    run_url, page_url = url + RUN_PATH, url + PAGE_TARGET

    def fetch(target: str) -> bytes:
        return pool.request("GET", target, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS).content

    name = "httpcore2 ConnectionPool"
    return [
        Peer(
            RAW_MSGSPEC,
            f"{name} + msgspec",
            lambda: RUN_DECODER.decode(fetch(run_url)),
            lambda: PAGE_DECODER.decode(fetch(page_url)),
        ),
        Peer(
            RAW_JSON,
            f"{name} + json.loads",
            lambda: json.loads(fetch(run_url)),
            lambda: json.loads(fetch(page_url)),
        ),
    ]


def _httpx_sync_peer(url: str, stack: ExitStack) -> Peer[SyncOne]:
    import httpx

    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    client = stack.enter_context(
        httpx.Client(base_url=url, headers=HEADERS, limits=limits, timeout=TIMEOUT_SECONDS)
    )
    return Peer(
        HTTPX,
        "httpx.Client + json.loads",
        lambda: json.loads(client.get(RUN_PATH).content),
        lambda: json.loads(client.get(PAGE_TARGET).content),
    )


def _generated_sync_peer(url: str, stack: ExitStack, generated: Generated) -> Peer[SyncOne]:
    client = stack.enter_context(generated.client(url, API_KEY, POOL_SIZE))
    get_run, list_events = (
        generated.operations["get_run"],
        generated.operations["list_audit_events"],
    )
    return Peer(
        GENERATED,
        "openapi-python-client, sync",
        lambda: get_run.sync(client=client, run_id=RUN_ID),
        lambda: list_events.sync(client=client, limit=PAGE_EVENTS),
    )


def open_sync(url: str, stack: ExitStack, generated: Generated | None) -> SyncRig:
    """Open every blocking client on ``stack`` (httpx's if installed, the generated one's if
    given).
    """
    kneo = stack.enter_context(
        SyncKneoClient(_profile(url), max_connections=POOL_SIZE, tracing=False)
    )
    pool = stack.enter_context(httpcore2.ConnectionPool(max_connections=POOL_SIZE, retries=0))
    peers: list[Peer[SyncOne]] = [
        Peer(
            KNEO,
            "SyncKneoClient",
            _kneo_sync_get(kneo),
            lambda: kneo.platform.audit.list(limit=PAGE_EVENTS),
        ),
        *_kneo_sync_variants(url, stack),
        *_raw_sync_peers(url, pool),
        _stdlib_peer(url, stack),
    ]
    if HAVE_HTTPX:
        peers.append(_httpx_sync_peer(url, stack))
    if generated is not None:
        peers.append(_generated_sync_peer(url, stack, generated))
    return SyncRig(url, kneo, pool, peers)


def _raw_async_peers(url: str, pool: httpcore2.AsyncConnectionPool) -> list[Peer[AsyncOne]]:
    run_url, page_url = url + RUN_PATH, url + PAGE_TARGET

    async def fetch(target: str) -> bytes:
        response = await pool.request("GET", target, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS)
        return response.content

    async def struct_get() -> object:
        return RUN_DECODER.decode(await fetch(run_url))

    async def struct_page() -> object:
        return PAGE_DECODER.decode(await fetch(page_url))

    async def json_get() -> object:
        return json.loads(await fetch(run_url))

    async def json_page() -> object:
        return json.loads(await fetch(page_url))

    name = "httpcore2 AsyncConnectionPool"
    return [
        Peer(RAW_MSGSPEC, f"{name} + msgspec", struct_get, struct_page),
        Peer(RAW_JSON, f"{name} + json.loads", json_get, json_page),
    ]


async def _httpx_async_peer(url: str, stack: AsyncExitStack) -> Peer[AsyncOne]:
    import httpx

    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    client = await stack.enter_async_context(
        httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=TIMEOUT_SECONDS)
    )

    async def get() -> object:
        return json.loads((await client.get(RUN_PATH)).content)

    async def page() -> object:
        return json.loads((await client.get(PAGE_TARGET)).content)

    return Peer(HTTPX, "httpx.AsyncClient + json.loads", get, page)


async def _generated_async_peer(
    url: str, stack: AsyncExitStack, generated: Generated
) -> Peer[AsyncOne]:
    client = await stack.enter_async_context(generated.client(url, API_KEY, POOL_SIZE))
    get_run, list_events = (
        generated.operations["get_run"],
        generated.operations["list_audit_events"],
    )

    async def get() -> object:
        return await get_run.asyncio(client=client, run_id=RUN_ID)

    async def page() -> object:
        return await list_events.asyncio(client=client, limit=PAGE_EVENTS)

    return Peer(GENERATED, "openapi-python-client, async", get, page)


async def open_async(url: str, stack: AsyncExitStack, generated: Generated | None) -> AsyncRig:
    """Open every async client on ``stack``, in the running event loop (asyncio or trio)."""
    kneo = await stack.enter_async_context(
        KneoClient(_profile(url), max_connections=POOL_SIZE, tracing=False)
    )
    pool = await stack.enter_async_context(
        httpcore2.AsyncConnectionPool(max_connections=POOL_SIZE, retries=0)
    )

    async def kneo_page() -> object:
        return await kneo.platform.audit.list(limit=PAGE_EVENTS)

    peers: list[Peer[AsyncOne]] = [
        Peer(KNEO, "KneoClient", _kneo_async_get(kneo), kneo_page),
        *await _kneo_async_variants(url, stack),
        *_raw_async_peers(url, pool),
    ]
    if HAVE_HTTPX:
        peers.append(await _httpx_async_peer(url, stack))
    if generated is not None:
        peers.append(await _generated_async_peer(url, stack, generated))
    return AsyncRig(url, kneo, pool, peers)
