"""How the facades take proxy settings: ``proxy=``/``trust_env=`` keywords over the profile,
``KNEO_PROXY``/``KNEO_TRUST_ENV`` and the TOML through ``load_profile``, the environment's
proxy variables read from ``os.environ``; a caller's ``http_client`` refusing what it would
ignore (a ``driver``, a test double, is left alone). No request is sent (the plan is what a
transport's pool will use)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore2
import httpx
import pytest

from kneo_client import KneoClient, SyncKneoClient, load_profile
from kneo_client.core.transport import SyncTransport, Transport
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import (
    ENV_PROXY,
    ENV_TRUST_ENV,
    KneoConfigurationError,
    KneoInsecureTransportError,
    Profile,
    ProxyPlan,
    Response,
)

URL = "https://kneo.example.com"
KEY = "kneo_key_0123456789"
SECRET = "hunter2-proxy"
VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", ENV_PROXY, ENV_TRUST_ENV)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def plan_of(client: KneoClient | SyncKneoClient | Transport | SyncTransport) -> ProxyPlan:
    transport = client if isinstance(client, Transport | SyncTransport) else client._transport
    assert transport.proxy_plan is not None
    return transport.proxy_plan


def shown(plan: ProxyPlan) -> tuple[str | None, str]:
    return (None, plan.reason) if plan.proxy is None else (plan.proxy.url, plan.proxy.source)


def test_from_profile_takes_proxy_and_trust_env(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    options: dict[str, Any] = {"config_file": missing, "url": URL, "api_key": KEY}
    client = KneoClient.from_profile(proxy="http://p:3128", trust_env=False, **options)
    assert shown(plan_of(client)) == ("http://p:3128", "keyword proxy=")
    assert (client.profile.proxy, client.profile.trust_env) == ("http://p:3128", False)
    with SyncKneoClient.from_profile(**options) as sync:
        assert plan_of(sync).direct


def test_kneo_proxy_and_the_toml_reach_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(f'[default]\nurl = "{URL}"\napi_key = "{KEY}"\nproxy = "http://t:1"\n')
    assert shown(plan_of(KneoClient(load_profile(config_file=config)))) == (
        "http://t:1",
        f"[default] in {config}",
    )
    monkeypatch.setenv(ENV_PROXY, "socks5h://e:1080")
    assert shown(plan_of(KneoClient(load_profile(config_file=config)))) == (
        "socks5h://e:1080",
        "KNEO_PROXY",
    )
    client = KneoClient(load_profile(config_file=config), proxy="https://k")
    assert shown(plan_of(client)) == ("https://k:443", "keyword proxy=")


def test_the_environment_is_read_by_the_transport_unless_trust_env_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = Profile(name="p", url=URL, api_key=KEY)
    monkeypatch.setenv("HTTPS_PROXY", "http://env:3128")
    assert shown(plan_of(Transport(profile))) == ("http://env:3128", "HTTPS_PROXY")
    assert plan_of(SyncTransport(profile, trust_env=False)).direct
    monkeypatch.setenv(ENV_TRUST_ENV, "0")
    assert plan_of(KneoClient(load_profile(url=URL, api_key=KEY))).direct
    assert not plan_of(KneoClient(load_profile(url=URL, api_key=KEY), trust_env=True)).direct
    monkeypatch.setenv("NO_PROXY", ".example.com")
    assert plan_of(Transport(profile)).reason == "NO_PROXY entry '.example.com'"


def test_the_plan_is_logged_once_at_debug_without_the_password(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:{SECRET}@proxy.corp:3128")
    with caplog.at_level(logging.DEBUG, logger="kneo_client"):
        SyncTransport(Profile(name="p", url=URL, api_key=KEY)).close()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "kneo_client.proxy"]
    assert line == f"{URL}: via proxy http://proxy.corp:3128 (from HTTPS_PROXY)"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"proxy": f"http://a:{SECRET}@p:3128/path"}, "must not have a path"),
        ({"proxy": "socks4://p"}, "SOCKS4 is not supported"),
        ({"trust_env": "no"}, "trust_env must be True or False"),
    ],
)
def test_a_bad_keyword_is_refused_when_the_transport_is_built(
    options: dict[str, Any], problem: str
) -> None:
    for transport in (Transport, SyncTransport):
        with pytest.raises(KneoConfigurationError, match=problem) as caught:
            transport(Profile(name="p", url=URL, api_key=KEY), **options)
        assert SECRET not in str(caught.value)


def test_the_key_in_clear_through_a_remote_proxy_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    profile = Profile(name="p", url="http://127.0.0.1:8080", api_key=KEY)
    with pytest.raises(KneoInsecureTransportError, match=r"through the proxy .*HTTP_PROXY"):
        SyncTransport(profile)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    SyncTransport(profile).close()


# -- what a caller's client or driver would ignore ----------------------------------------------


def _pool(sync: bool) -> Any:
    return httpcore2.ConnectionPool() if sync else httpcore2.AsyncConnectionPool()


def _httpx(sync: bool) -> Any:
    return httpx.Client() if sync else httpx.AsyncClient()


def _driver(sync: bool) -> Any:
    def answer(request: Any) -> Response:
        return Response(200, (), b"{}")

    return MemoryDriver(answer) if sync else AsyncMemoryDriver(answer)


# (what is passed, options, profile fields, the error's words or None when accepted)
IGNORED: list[tuple[str, Callable[[bool], Any], dict[str, Any], dict[str, Any], str | None]] = [
    ("http_client", _pool, {"proxy": "http://p:1"}, {}, "proxy= would be ignored: it applies"),
    ("http_client", _pool, {"max_connections": 5}, {}, "max_connections= would be ignored"),
    (
        "http_client",
        _httpx,
        {"proxy": "http://p:1", "max_connections": 5},
        {},
        "proxy= and max_connections= would be ignored: they apply",
    ),
    ("http_client", _pool, {}, {"proxy": "http://p:1"}, "the profile's proxy (from profile 'p')"),
    ("http_client", _httpx, {}, {"proxy": "http://p:1"}, "not to your http_client"),
    ("http_client", _pool, {"trust_env": False}, {}, None),
    # A driver (a test double) has no network: nothing to refuse.
    ("driver", _driver, {"proxy": "http://p:1", "max_connections": 2}, {}, None),
    ("driver", _driver, {}, {"proxy": "http://p:1"}, None),
]


@pytest.mark.parametrize("sync", [True, False], ids=["blocking", "async"])
@pytest.mark.parametrize(("passed", "make", "options", "fields", "words"), IGNORED)
def test_settings_a_callers_client_would_ignore_are_refused(
    sync: bool,
    passed: str,
    make: Callable[[bool], Any],
    options: dict[str, Any],
    fields: dict[str, Any],
    words: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:3128")  # the caller's client's business
    profile = Profile(name="p", url=URL, api_key=KEY, **fields)
    transport = SyncTransport if sync else Transport
    given = make(sync)
    if words is None:
        built = transport(profile, **{passed: given}, **options)
        assert built.proxy_plan is None
        return
    with pytest.raises(KneoConfigurationError, match=re.escape(words)) as caught:
        transport(profile, **{passed: given}, **options)
    assert "Leave" in str(caught.value)
    assert "let kneo-client build the pool" in str(caught.value)
