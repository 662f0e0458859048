"""One async test body for the three flavours, with the client's own options.

``socket_subject.Subject`` fixes its clients' options (no retry budget, 4 connections); the
tests of keep-alive, forks, event loops and huge timeouts need the defaults or other ones.
``make`` builds a ``KneoClient`` (asyncio, trio) or a ``SyncKneoClient`` (blocking) with any
options; ``get``, ``post``, ``wait`` and ``close`` make the same call on either, the blocking
one from a worker thread, so one async body serves all three; ``run`` runs such a body in a
new event loop of the flavour's library (the blocking flavour's on asyncio).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client._bind import ApiResponse
from kneo_proto.models import RunCreateRequestDict, RunCreateResponse, RunStatusResponse
from tests.support.scripted_server import SPEC_ID
from tests.support.socket_subject import API_KEY, Flavour

__all__ = ["Client", "close", "get", "make", "post", "run", "wait"]

T = TypeVar("T")
Client = KneoClient | SyncKneoClient


def make(flavour: Flavour, url: str, *, timeout: float = 5.0, **options: Any) -> Client:
    """A client of ``flavour`` for ``url``, built outside any event loop."""
    profile = Profile(name="flavoured", url=url, api_key=API_KEY, timeout=timeout)
    if flavour == "blocking":
        return SyncKneoClient(profile, **options)
    return KneoClient(profile, **options)


def run(flavour: Flavour, body: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``body(*args)`` in a new event loop: trio's for trio, asyncio's otherwise."""
    return anyio.run(body, *args, backend="trio" if flavour == "trio" else "asyncio")


async def get(client: Client, run_id: str, **options: Any) -> ApiResponse[RunStatusResponse]:
    """``runs.get.raw(run_id)`` (on ``client.with_options(**options)``)."""
    if options:
        client = client.with_options(**options)
    if isinstance(client, SyncKneoClient):
        return await anyio.to_thread.run_sync(client.platform.runs.get.raw, run_id)
    return await client.platform.runs.get.raw(run_id)


async def post(client: Client, **options: Any) -> ApiResponse[RunCreateResponse]:
    """``runs.create.raw(...)``, with the client's automatic idempotency key."""
    if options:
        client = client.with_options(**options)
    body: RunCreateRequestDict = {"spec_id": SPEC_ID}
    if isinstance(client, SyncKneoClient):
        return await anyio.to_thread.run_sync(client.platform.runs.create.raw, body)
    return await client.platform.runs.create.raw(body)


async def wait(client: Client, run_id: str, **options: Any) -> RunStatusResponse:
    """``runs.wait_for_completion(run_id, **options)``."""
    if isinstance(client, SyncKneoClient):
        waiter = client.platform.runs.wait_for_completion

        def blocking() -> RunStatusResponse:
            return waiter(run_id, **options)

        return await anyio.to_thread.run_sync(blocking)
    return await client.platform.runs.wait_for_completion(run_id, **options)


async def close(client: Client) -> None:
    """Close ``client`` (``aclose`` in the running event loop)."""
    if isinstance(client, SyncKneoClient):
        await anyio.to_thread.run_sync(client.close)
    else:
        await client.aclose()
