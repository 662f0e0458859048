"""``serve_emulator`` and ``serve_emulator_async``: what they yield and how they end."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anyio
import pytest

from kneo_client import KneoClient, KneoServerError, SyncKneoClient
from kneo_client.testing import (
    Emulator,
    RunningEmulator,
    SystemClock,
    serve_emulator,
    serve_emulator_async,
)
from kneo_proto import Request
from kneo_proto.models import RunCreateRequestDict

pytestmark = pytest.mark.timeout(20)


def check_running(running: RunningEmulator, emulator: Emulator | None = None) -> None:
    assert running.url.startswith("http://127.0.0.1:")
    assert running.api_key == running.emulator.api_key
    assert running.read_only_key == running.emulator.read_only_key
    assert emulator is None or running.emulator is emulator
    assert running.api_key not in repr(running)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_emulator_serves_from_a_thread_on_either_event_loop(backend: str) -> None:
    emulator = Emulator()
    with (
        serve_emulator(emulator, backend=backend) as running,
        SyncKneoClient(running.profile()) as client,
    ):
        check_running(running, emulator)
        assert client.platform.health.readyz().ok
        assert client.platform.runs.create({"spec_id": "my-spec"}).status == "queued"
    assert emulator.counters.operations["create_run"] == 1


@pytest.mark.anyio
async def test_serve_emulator_async_serves_in_the_callers_loop() -> None:
    async with serve_emulator_async() as running, KneoClient(running.profile()) as client:
        check_running(running)
        assert (await client.platform.health.readyz()).ok
        assert await client.platform.runs.list() is not None


@pytest.mark.anyio
async def test_an_error_in_the_body_leaves_unwrapped() -> None:
    with pytest.raises(KeyError, match="from the body"):
        async with serve_emulator_async():
            raise KeyError("from the body")


def test_an_error_in_the_sync_body_leaves_unwrapped() -> None:
    with pytest.raises(KeyError, match="from the body"), serve_emulator():
        raise KeyError("from the body")


class Broken(Emulator):
    def handle(self, request: Request) -> object:  # type: ignore[override]
        raise ZeroDivisionError("emulator bug")


def call_broken_emulator() -> None:
    with serve_emulator(Broken()) as running, SyncKneoClient(running.profile()) as client:
        with pytest.raises(KneoServerError) as caught:
            client.platform.health.livez()
        assert (caught.value.status, caught.value.code) == (500, "internal_error")


def test_an_emulator_failure_is_answered_500_and_raised_at_exit() -> None:
    with pytest.raises(ZeroDivisionError, match="emulator bug"):
        call_broken_emulator()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.anyio
async def test_a_port_in_use_raises_a_plain_os_error(busy_port: int) -> None:
    with pytest.raises(OSError, match="in use"):
        async with serve_emulator_async(port=busy_port):
            pass


def test_profile_carries_the_full_or_the_read_only_key() -> None:
    with serve_emulator(Emulator(clock=SystemClock())) as running:
        assert running.profile().api_key == running.api_key
        assert running.profile(read_only=True).api_key == running.read_only_key
        assert running.profile().url == running.url


@pytest.mark.anyio
async def test_many_clients_at_once_share_one_server() -> None:
    async with serve_emulator_async() as running, KneoClient(running.profile()) as client:
        body: RunCreateRequestDict = {"spec_id": "my-spec"}
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(client.platform.runs.create, body)
        assert (await client.platform.runs.list()).total == 30
