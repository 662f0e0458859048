"""One scenario, three clients: the async client on asyncio and on trio, and the blocking one.

A scenario is an async function of a ``World``. Every client call goes through ``resolve``:
the async client returns awaitables, the blocking client returns values, so the same
scenario text drives both. The async clients talk to the emulator served in their own event
loop (``serve_emulator_async``); the blocking client talks to it served from a background
thread (``serve_emulator``), as a user of each would.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import anyio

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient
from kneo_client.testing import Emulator, RunningEmulator, serve_emulator, serve_emulator_async

__all__ = ["FAST", "FLAVOURS", "LIMIT", "Client", "World", "collect", "play", "resolve"]

T = TypeVar("T")
Client = KneoClient | SyncKneoClient
FLAVOURS = ["asyncio", "trio", "blocking"]
LIMIT = 15.0  # no scenario may take longer; a hang fails instead of stalling the suite
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


async def resolve(value: Awaitable[T] | T) -> T:
    """Return the result of a client call, awaiting it for the async client."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


async def collect(items: AsyncIterable[T] | Iterable[T]) -> list[T]:
    """Return every item of an ``iter_all`` iterator, async or blocking."""
    if isinstance(items, AsyncIterable):
        return [item async for item in items]
    return list(items)


@dataclass
class World:
    """A served emulator and a client of one flavour connected to it."""

    running: RunningEmulator
    flavour: str
    stack: AsyncExitStack
    client: Client

    @property
    def emulator(self) -> Emulator:
        return self.running.emulator

    async def open(self, profile: Profile | None = None, **options: Any) -> Client:
        """Return another client of this world's flavour, closed when the scenario ends."""
        return await _open(self.flavour, self.stack, profile or self.running.profile(), options)


async def _open(
    flavour: str, stack: AsyncExitStack, profile: Profile, options: dict[str, Any]
) -> Client:
    options.setdefault("retry_policy", FAST)
    if flavour == "blocking":
        return stack.enter_context(SyncKneoClient(profile, **options))
    return await stack.enter_async_context(KneoClient(profile, **options))


def play(
    flavour: str, scenario: Callable[[World], Awaitable[None]], emulator: Emulator | None = None
) -> Emulator:
    """Serve ``emulator`` (a new one by default), run ``scenario`` with a client; return it."""
    emulator = emulator or Emulator()

    async def main() -> None:
        with anyio.fail_after(LIMIT):
            async with AsyncExitStack() as stack:
                if flavour == "blocking":
                    running = stack.enter_context(serve_emulator(emulator))
                else:
                    running = await stack.enter_async_context(serve_emulator_async(emulator))
                client = await _open(flavour, stack, running.profile(), {})
                await scenario(World(running, flavour, stack, client))

    anyio.run(main, backend="trio" if flavour == "trio" else "asyncio")
    return emulator
