"""Strict on request, through both facades: every mistake below raises ``KneoUsageError`` and
the emulator behind the in-memory drivers never sees a request (its counters stay at zero),
on the async client (asyncio and trio) and on the blocking one. The mistakes are written as
user code would (the clients are typed ``Any`` here; ``tests/typecheck`` shows mypy refusing
the same calls), and one table serves all three flavours.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import Emulator, async_memory_driver, memory_driver
from kneo_proto import KneoUsageError
from kneo_proto.models import RunCreateRequest

# (what the caller got wrong, the call, a fragment of the message)
MISTAKES: list[tuple[str, Callable[[Any], object], str]] = [
    (
        "unknown dict key",
        lambda c: c.platform.runs.create({"spec_id": "s", "input": {}}),
        "unknown field 'input' in the RunCreateRequest body; did you mean 'inputs'?",
    ),
    (
        "model with a wrong type",
        lambda c: c.platform.runs.create(RunCreateRequest(spec_id=1)),  # type: ignore[arg-type]
        "invalid RunCreateRequest body: Expected `str`, got `int` - at `$.spec_id`",
    ),
    (
        "sort_order typo",
        lambda c: c.platform.runs.list(sort_order="descending"),
        "did you mean 'desc'?",
    ),
    (
        "sort_by typo in an iterator",
        lambda c: c.platform.audit.iter_all(sort_by="time"),
        "did you mean 'timestamp'?",
    ),
    (
        "unknown key in a resume",
        lambda c: c.platform.human_tasks.resume("cont-1", {"decision": "approve", "coment": ""}),
        "did you mean 'comment'?",
    ),
    (
        "string for an integer",
        lambda c: c.platform.policies.environment_put("prod", {"max_run_seconds": "10"}),
        "Expected `int`, got `str` - at `$.max_run_seconds`",
    ),
    (
        "unknown key in a spec body",
        lambda c: c.agent.specs.validate({"spec": "x", "formt": "yaml"}),
        "did you mean 'format'?",
    ),
    (
        "one string for the terminal statuses",
        lambda c: c.platform.runs.wait_for_completion("run-1", terminal_statuses="completed"),
        "such as {'completed'}, not the string 'completed'",
    ),
]
IDS = [name for name, _, _ in MISTAKES]


def profile(emulator: Emulator) -> Profile:
    return Profile(name="emulator", url="https://emulator.test", api_key=emulator.api_key)


def assert_nothing_sent(emulator: Emulator) -> None:
    assert not emulator.counters.requests
    assert not emulator.counters.operations


async def call_async(mistake: Callable[[Any], object], client: KneoClient) -> None:
    """Make the call as user code would: await it, or take the first item of an iterator."""
    result = mistake(client)
    if isinstance(result, AsyncIterator):
        await anext(result)
    elif inspect.isawaitable(result):
        await result


def call_blocking(mistake: Callable[[Any], object], client: SyncKneoClient) -> None:
    result = mistake(client)
    if isinstance(result, Iterator):
        next(result)


@pytest.mark.anyio
@pytest.mark.parametrize(("_name", "mistake", "fragment"), MISTAKES, ids=IDS)
async def test_async_client_refuses_the_mistake_before_sending(
    _name: str, mistake: Callable[[Any], object], fragment: str
) -> None:
    emulator = Emulator()
    async with KneoClient(profile(emulator), driver=async_memory_driver(emulator)) as client:
        with pytest.raises(KneoUsageError) as caught:
            await call_async(mistake, client)
        assert fragment in str(caught.value)
        assert_nothing_sent(emulator)
        await client.platform.runs.create({"spec_id": "my-spec"})  # the count is live
    assert emulator.counters.operations["create_run"] == 1


@pytest.mark.parametrize(("_name", "mistake", "fragment"), MISTAKES, ids=IDS)
def test_blocking_client_refuses_the_mistake_before_sending(
    _name: str, mistake: Callable[[Any], object], fragment: str
) -> None:
    emulator = Emulator()
    with SyncKneoClient(profile(emulator), driver=memory_driver(emulator)) as client:
        with pytest.raises(KneoUsageError) as caught:
            call_blocking(mistake, client)
        assert fragment in str(caught.value)
        assert_nothing_sent(emulator)
        client.platform.runs.create({"spec_id": "my-spec"})  # the count is live
    assert emulator.counters.operations["create_run"] == 1
