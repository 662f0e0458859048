"""The first hour with kneo-client: building a client from keywords, the mistakes a new user
makes (a typo, a URL where a ``Profile`` goes, a plain ``for`` over an async iterator) and the
names the reference documents (``DEFAULT_TERMINAL_STATUSES``, ``PlatformClient(transport)``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client._transport_base import TransportBase
from kneo_client.agent import AgentClient
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.platform import DEFAULT_TERMINAL_STATUSES, PlatformClient
from kneo_client.testing import Emulator, async_memory_driver, memory_driver
from kneo_proto import KneoConfigurationError, RetryPolicy
from kneo_proto._polling import DEFAULT_TERMINAL_STATUSES as PROTO_TERMINAL_STATUSES
from kneo_proto._profiles import PROFILE_FIELDS

URL = "https://kneo.test"
KEY = "kneo_first_hour_0123456789abcdef"
CLIENTS = (KneoClient, SyncKneoClient)


def keywords(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def attempts_of(client: KneoClient | SyncKneoClient) -> int:
    return client._session.config.retry_policy.max_attempts


# -- 1. keyword construction -------------------------------------------------------------------


@pytest.mark.parametrize("client_class", CLIENTS)
def test_client_builds_its_profile_from_keywords(
    client_class: type[KneoClient | SyncKneoClient], tmp_path: Path
) -> None:
    client = client_class(url=URL, api_key=KEY, timeout=7.0, config_file=tmp_path / "no.toml")
    assert (client.profile.url, client.profile.api_key, client.profile.timeout) == (URL, KEY, 7.0)
    assert client.profile.name == "default"


def test_client_keywords_fall_back_to_the_environment_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(f'[default]\nurl = "{URL}"\napi_key = "{KEY}"\ntimeout = 3.0\n')
    monkeypatch.delenv("KNEO_PROFILE", raising=False)
    client = SyncKneoClient(config_file=config, timeout=9.0)
    assert (client.profile.url, client.profile.api_key, client.profile.timeout) == (URL, KEY, 9.0)
    monkeypatch.setenv("KNEO_URL", "https://env.kneo.test")
    monkeypatch.setenv("KNEO_API_KEY", KEY)
    assert KneoClient(config_file=tmp_path / "no.toml").profile.url == "https://env.kneo.test"
    assert KneoClient(config_file=config, url="https://kw.kneo.test").profile.url == (
        "https://kw.kneo.test"
    )


def test_client_from_keywords_calls_the_platform(tmp_path: Path) -> None:
    emulator = Emulator()
    with SyncKneoClient(
        url=URL,
        api_key=emulator.api_key,
        config_file=tmp_path / "no.toml",
        driver=memory_driver(emulator),
    ) as client:
        assert client.platform.runs.list().runs == []


@pytest.mark.parametrize("client_class", CLIENTS)
def test_max_retries_is_one_attempt_fewer_than_the_policy(
    client_class: type[KneoClient | SyncKneoClient], tmp_path: Path
) -> None:
    options: dict[str, Any] = {"url": URL, "api_key": KEY, "config_file": tmp_path / "no.toml"}
    assert attempts_of(client_class(max_retries=0, **options)) == 1
    assert attempts_of(client_class(max_retries=4, **options)) == 5
    assert attempts_of(client_class.from_profile(max_retries=2, **options)) == 3
    assert attempts_of(client_class(**options)) == RetryPolicy().max_attempts


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": 2, "retry_policy": RetryPolicy()}, "not both"),
        ({"max_retries": -1}, "int >= 0"),
        ({"max_retries": "3"}, "int >= 0"),
        ({"max_retries": True}, "int >= 0"),
    ],
)
def test_max_retries_is_refused_when_unusable(
    options: dict[str, Any], message: str, tmp_path: Path
) -> None:
    for build in (KneoClient, SyncKneoClient.from_profile):
        with pytest.raises(KneoConfigurationError, match=message):
            build(url=URL, api_key=KEY, config_file=tmp_path / "no.toml", **options)


def test_client_on_a_profile_still_takes_transport_keywords_but_not_profile_fields() -> None:
    profile = Profile(name="p", url=URL, api_key=KEY)
    client = KneoClient(profile, retry_policy=RetryPolicy(max_attempts=1), strict_responses=True)
    assert (client.profile.url, attempts_of(client), client.profile.strict_responses) == (
        URL,
        1,
        True,
    )
    with pytest.raises(TypeError, match=r"SyncKneoClient\(profile, url=\.\.\.\): url"):
        SyncKneoClient(profile, url="https://other.kneo.test")


# -- 2. explicit keywords, and a suggestion for a typo ------------------------------------------


def test_from_profile_keywords_are_the_profile_fields_and_the_transport_keywords() -> None:
    """One list each: PROFILE_FIELDS and the transport's ``__init__``; ``max_retries`` is the
    client's own. Adding a field or a transport keyword without the clients fails here."""
    transport = keywords(TransportBase.__init__)
    expected = {"config_file", *PROFILE_FIELDS, *transport, "max_retries"}
    for client_class in CLIENTS:
        assert set(keywords(client_class.from_profile)) == expected
        assert set(keywords(client_class)) == expected
        for name, parameter in keywords(client_class).items():
            shared = transport.get(name)
            if shared is not None and name not in PROFILE_FIELDS:
                assert parameter.default == shared.default, name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: SyncKneoClient.from_profile(time_out=5),  # type: ignore[call-arg]
            "SyncKneoClient.from_profile() got an unexpected keyword argument 'time_out'; "
            "did you mean 'timeout'?",
        ),
        (
            lambda: KneoClient(url=URL, api_kye=KEY),  # type: ignore[call-arg]
            "KneoClient() got an unexpected keyword argument 'api_kye'; did you mean 'api_key'?",
        ),
        (
            lambda: SyncKneoClient(url=URL, max_retry=2),  # type: ignore[call-arg]
            "SyncKneoClient() got an unexpected keyword argument 'max_retry'; "
            "did you mean 'max_retries'?",
        ),
        (
            lambda: KneoClient.from_profile(zzz=1),  # type: ignore[call-arg]
            "KneoClient.from_profile() got an unexpected keyword argument 'zzz'",
        ),
    ],
)
def test_an_unknown_keyword_is_a_type_error_naming_the_closest_one(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(TypeError) as raised:
        call()
    assert str(raised.value) == message


# -- 3. a URL where the Profile goes ------------------------------------------------------------


@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_positional_url_is_a_type_error_saying_what_to_pass(
    client_class: type[KneoClient | SyncKneoClient],
) -> None:
    with pytest.raises(TypeError) as raised:
        client_class("https://x.kneo.test")  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"{client_class.__name__}(url=..., api_key=...)" in message
    assert "Profile" in message
    assert "x.kneo.test" not in message  # a positional string may be a key: never echoed


# -- 4. DEFAULT_TERMINAL_STATUSES --------------------------------------------------------------


def test_default_terminal_statuses_are_importable_from_platform() -> None:
    assert DEFAULT_TERMINAL_STATUSES is PROTO_TERMINAL_STATUSES
    assert frozenset({"completed", "failed", "cancelled"}) == DEFAULT_TERMINAL_STATUSES


# -- 5. PlatformClient(transport), AgentClient(transport) ---------------------------------------


@pytest.mark.anyio
async def test_platform_client_on_a_transport_is_async() -> None:
    emulator = Emulator()
    profile = Profile(name="t", url=URL, api_key=emulator.api_key)
    async with Transport(profile, driver=async_memory_driver(emulator)) as transport:
        assert (await PlatformClient(transport).runs.list()).runs == []
        assert AgentClient(transport).specs._session is transport._session


def test_platform_client_on_a_sync_transport_is_blocking() -> None:
    emulator = Emulator()
    profile = Profile(name="t", url=URL, api_key=emulator.api_key)
    with SyncTransport(profile, driver=memory_driver(emulator)) as transport:
        assert PlatformClient(transport).runs.list().runs == []
        assert AgentClient(transport).specs._session is transport._session


def test_platform_client_refuses_anything_but_a_transport() -> None:
    with pytest.raises(TypeError, match="takes a Transport or a SyncTransport, not Profile"):
        PlatformClient(Profile(name="t", url=URL, api_key=KEY))  # type: ignore[call-overload]


# -- 6. a plain for over an async iterator -------------------------------------------------------


def test_a_plain_for_over_an_async_iterator_says_to_use_async_for() -> None:
    emulator = Emulator()
    profile = Profile(name="t", url=URL, api_key=emulator.api_key)
    client = KneoClient(profile, driver=async_memory_driver(emulator))
    with pytest.raises(TypeError, match=r"use 'async for item in \.\.\.'.*or SyncKneoClient"):
        for _ in client.platform.audit.iter_all():  # type: ignore[attr-defined]
            pass
