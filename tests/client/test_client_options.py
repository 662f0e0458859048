"""``with_options(observers=...)`` replaces the client's observers for the calls made through
the client it returns, and both colours of client and transport take the same keywords (they
share one constructor, so a keyword added to one is added to the other)."""

from __future__ import annotations

import inspect
from typing import assert_type

import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.core.transport import SyncTransport, Transport
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import Event, Request, Response

PROFILE = Profile(name="t", url="https://kneo.test", api_key="kneo_options_0123456789abcdef")
HEALTH = msgspec.json.encode({"ok": True})


def healthy(request: Request) -> Response:
    return Response(200, (), HEALTH)


def test_with_options_observers_replace_the_clients_observers() -> None:
    own: list[Event] = []
    other: list[Event] = []
    client = SyncKneoClient(PROFILE, driver=MemoryDriver(healthy), observers=[own.append])
    tuned = client.with_options(observers=[other.append])
    assert_type(tuned, SyncKneoClient)
    tuned.platform.health.healthz()
    assert own == []
    assert other, "the observer given to with_options saw no event of its call"
    assert {id(event.call) for event in other} == {id(other[0].call)}  # one call's events
    client.platform.health.healthz()
    assert own
    assert len({id(event.call) for event in other}) == 1  # the client's call went elsewhere


@pytest.mark.anyio
async def test_async_with_options_observers_replace_the_clients_observers() -> None:
    own: list[Event] = []
    other: list[Event] = []
    client = KneoClient(PROFILE, driver=AsyncMemoryDriver(healthy), observers=[own.append])
    tuned = client.with_options(observers=[other.append])
    assert_type(tuned, KneoClient)
    await tuned.platform.health.healthz()
    assert own == []
    assert other, "the observer given to with_options saw no event of its call"


def test_with_options_keeps_the_clients_observers_unless_given_some() -> None:
    own: list[Event] = []
    client = SyncKneoClient(PROFILE, driver=MemoryDriver(healthy), observers=[own.append])
    client.with_options(timeout=5.0).platform.health.healthz()
    kept = len(own)
    assert kept
    client.with_options(observers=()).platform.health.healthz()
    assert len(own) == kept


@pytest.mark.parametrize("client_class", [KneoClient, SyncKneoClient])
def test_with_options_returns_a_client_of_the_same_class_on_the_same_transport(
    client_class: type[KneoClient] | type[SyncKneoClient],
) -> None:
    client = client_class(PROFILE)
    tuned = client.with_options(request_id="r-1")
    assert type(tuned) is client_class
    assert tuned._transport is client._transport
    assert tuned.profile is client.profile
    assert tuned.platform is not client.platform
    assert (
        repr(tuned) == repr(client) == f"<{client_class.__name__} profile='t' url={PROFILE.url!r}>"
    )


def test_both_transports_take_the_same_keywords_with_the_same_defaults() -> None:
    def keywords(cls: type[Transport] | type[SyncTransport]) -> list[tuple[str, object]]:
        parameters = inspect.signature(cls).parameters.values()
        return [(p.name, p.default) for p in parameters if p.kind is p.KEYWORD_ONLY]

    assert keywords(Transport) == keywords(SyncTransport)
    assert {"http_client", "driver", "observers", "tracing"} <= dict(keywords(Transport)).keys()
