"""pytest fixtures for testing code that uses kneo-client against the platform emulator.

Installed with kneo-client as the ``kneo`` plugin (a ``pytest11`` entry point), so the
fixtures are there in every test of a project that depends on kneo-client::

    def test_readiness(kneo_client_sync):
        assert kneo_client_sync.platform.health.readyz().ok

Fixtures (each new per test):

- ``kneo_emulator``: a ``RunningEmulator`` served over HTTP on 127.0.0.1 from a background
  thread; ``.url``, ``.api_key``, ``.read_only_key``, ``.profile()`` and ``.emulator``
  (its virtual clock, faults and counters).
- ``kneo_client_sync``: a ``SyncKneoClient`` connected to ``kneo_emulator``.
- ``kneo_client_async``: a ``KneoClient`` connected to ``kneo_emulator``, for async tests
  run by anyio's pytest plugin (``@pytest.mark.anyio``), on asyncio or trio.
- ``kneo_memory_emulator``: an emulator with no sockets at all: ``.emulator`` and a
  ``SyncKneoClient`` as ``.client`` whose requests go straight to it (``memory_driver``, on
  ``memory_handler``), sharing its virtual time.

The module imports kneo-client only inside the fixtures: pytest loads plugins before
coverage measurement starts, and a project measuring its own use of kneo-client should not
find the SDK's import already done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kneo_client import KneoClient, SyncKneoClient
    from kneo_client.testing import Emulator, RunningEmulator

__all__ = [
    "MemoryEmulator",
    "kneo_client_async",
    "kneo_client_sync",
    "kneo_emulator",
    "kneo_memory_emulator",
]


@dataclass(frozen=True, slots=True)
class MemoryEmulator:
    """An emulator and a blocking client wired to it in memory.

    Attributes:
        emulator: The emulator: its virtual clock, faults and counters.
        client: A ``SyncKneoClient`` whose requests the emulator answers directly.
    """

    emulator: Emulator
    client: SyncKneoClient


@pytest.fixture
def kneo_emulator() -> Iterator[RunningEmulator]:
    """A platform emulator served over HTTP on 127.0.0.1 for the test."""
    from kneo_client.testing import serve_emulator

    with serve_emulator() as running:
        yield running


@pytest.fixture
def kneo_client_sync(kneo_emulator: RunningEmulator) -> Iterator[SyncKneoClient]:
    """A ``SyncKneoClient`` connected to ``kneo_emulator``."""
    from kneo_client import SyncKneoClient

    with SyncKneoClient(kneo_emulator.profile()) as client:
        yield client


@pytest.fixture
async def kneo_client_async(kneo_emulator: RunningEmulator) -> AsyncIterator[KneoClient]:
    """A ``KneoClient`` connected to ``kneo_emulator`` (use with ``@pytest.mark.anyio``)."""
    from kneo_client import KneoClient

    async with KneoClient(kneo_emulator.profile()) as client:
        yield client


@pytest.fixture
def kneo_memory_emulator() -> Iterator[MemoryEmulator]:
    """An emulator and a ``SyncKneoClient`` talking to it in memory, without sockets.

    The client and the emulator share one virtual time (``memory_driver``): polling,
    backoff and ``Retry-After`` waits move the emulator's clock instead of really waiting.
    """
    from kneo_client import Profile, SyncKneoClient
    from kneo_client.testing import Emulator, memory_driver

    emulator = Emulator()
    profile = Profile(
        name="emulator",
        url="https://emulator.test",
        api_key=emulator.api_key,
        strict_responses=True,  # the emulator answers exactly as spec/ says
    )
    with SyncKneoClient(profile, driver=memory_driver(emulator)) as client:
        yield MemoryEmulator(emulator, client)
