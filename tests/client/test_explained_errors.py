"""The facades' side of issue 11, part 5: a base URL ending in ``/v1`` is repaired with one
warning per client; ``load_profile`` says when a named profile has no config file; the
paging iterators refuse what ``list`` refuses, before any request; ``wait_for_completion``
with ``timeout=0`` polls once; bad wait arguments are refused before the first poll."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient, load_profile
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import (
    KneoUsageError,
    KneoWaitTimeoutError,
    ProfileError,
    Request,
    Response,
)

KEY = "kneo_canary_explained_0123456789abcdef"
URL = "https://kneo.test"


class Platform:
    """Answers every run GET with a run in ``status``; records each request's URL."""

    def __init__(self, status: str = "running") -> None:
        self.status = status
        self.urls: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.urls.append(request.url)
        if request.url.split("?")[0].endswith("/runs"):
            body: dict[str, Any] = {"runs": [], "total": 0, "limit": 100, "offset": 0}
        else:
            body = {"run_id": "run-1", "status": self.status}
        return Response(200, (), msgspec.json.encode(body))


def sync_client(platform: Platform, url: str = URL) -> SyncKneoClient:
    return SyncKneoClient(Profile(name="t", url=url, api_key=KEY), driver=MemoryDriver(platform))


def async_client(platform: Platform, url: str = URL) -> KneoClient:
    profile = Profile(name="t", url=url, api_key=KEY)
    return KneoClient(profile, driver=AsyncMemoryDriver(platform))


# -- item 3: a base URL ending in /v1 ------------------------------------------------------


def test_base_url_ending_in_v1_warns_once_per_client_and_requests_go_to_v1_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform = Platform("completed")
    with caplog.at_level(logging.WARNING, logger="kneo_client.transport"):
        with sync_client(platform, "https://kneo.test/v1/") as client:
            for _ in range(3):
                client.platform.runs.get("run-1")
        with sync_client(platform) as client:
            client.platform.runs.get("run-1")
    assert platform.urls == ["https://kneo.test/v1/runs/run-1"] * 4
    assert [r.getMessage() for r in caplog.records] == [
        "base URL https://kneo.test/v1 ends in /v1, which every request path already starts "
        "with (requests would go to /v1/v1/... and get 404): using https://kneo.test instead. "
        "Drop /v1 from the profile's url (or KNEO_URL) to silence this warning"
    ]


@pytest.mark.anyio
async def test_async_base_url_ending_in_v1_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    platform = Platform("completed")
    with caplog.at_level(logging.WARNING, logger="kneo_client.transport"):
        async with async_client(platform, "https://kneo.test/v1") as client:
            await client.platform.runs.get("run-1")
            await client.platform.runs.get("run-1")
    assert platform.urls == ["https://kneo.test/v1/runs/run-1"] * 2
    assert len(caplog.records) == 1
    assert "ends in /v1" in caplog.records[0].getMessage()


# -- item 5: load_profile with a name and no file -------------------------------------------


def test_load_profile_with_a_name_and_no_file_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KNEO_URL", URL)
    monkeypatch.setenv("KNEO_API_KEY", KEY)
    monkeypatch.delenv("KNEO_PROFILE", raising=False)
    missing = tmp_path / "client.toml"
    with pytest.raises(ProfileError) as caught:
        load_profile("stagin", config_file=missing)
    assert str(caught.value).startswith(
        f"profile 'stagin' not found: {missing} does not exist (file not found). Create it "
        "with a [stagin] section"
    )
    assert KEY not in str(caught.value)
    # The reference's load_profile() with only the environment keeps working.
    profile = load_profile(config_file=missing)
    assert (profile.name, profile.url, profile.api_key) == ("default", URL, KEY)


def test_load_profile_names_the_variable_that_holds_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KNEO_URL", URL)
    monkeypatch.setenv("KNEO_API_KEY", KEY)
    monkeypatch.setenv("KNEO_TIMEOUT", "abc")
    monkeypatch.delenv("KNEO_PROFILE", raising=False)
    with pytest.raises(ProfileError) as caught:
        load_profile(config_file=tmp_path / "client.toml")
    assert str(caught.value) == (
        "profile 'default': timeout must be a number of seconds - set by KNEO_TIMEOUT='abc'; "
        "fix or unset that variable"
    )


# -- item 8: paging iterators refuse what list refuses --------------------------------------

BAD_PAGES: list[dict[str, Any]] = [
    {"limit": 0},
    {"limit": 5000},
    {"limit": -1},
    {"limit": True},
    {"limit": "10"},
    {"offset": -1},
    {"offset": 1.5},
]


@pytest.mark.parametrize("window", BAD_PAGES)
def test_iter_all_refuses_what_list_refuses_before_any_request(window: dict[str, Any]) -> None:
    platform = Platform()
    with sync_client(platform) as client:
        with pytest.raises(KneoUsageError) as listed:
            client.platform.runs.list(**window)
        with pytest.raises(KneoUsageError) as iterated:
            client.platform.runs.iter_all(**window)  # raised when made, not when iterated
        with pytest.raises(KneoUsageError):
            client.platform.audit.iter_all(**window)
    assert str(iterated.value) == str(listed.value)
    assert platform.urls == []


@pytest.mark.anyio
@pytest.mark.parametrize("window", BAD_PAGES)
async def test_async_iter_all_refuses_what_list_refuses_before_any_request(
    window: dict[str, Any],
) -> None:
    platform = Platform()
    async with async_client(platform) as client:
        with pytest.raises(KneoUsageError) as listed:
            await client.platform.runs.list(**window)
        with pytest.raises(KneoUsageError) as iterated:
            client.platform.runs.iter_trace("run-1", **window)
    assert str(iterated.value) == str(listed.value)
    assert platform.urls == []


def test_iter_all_accepts_the_bounds() -> None:
    platform = Platform()
    with sync_client(platform) as client:
        assert list(client.platform.runs.iter_all(limit=1000, offset=0)) == []
        assert list(client.platform.runs.iter_all(limit=1, offset=7)) == []
    assert platform.urls == [
        "https://kneo.test/v1/runs?limit=1000&offset=0&sort_by=updated_at&sort_order=desc",
        "https://kneo.test/v1/runs?limit=1&offset=7&sort_by=updated_at&sort_order=desc",
    ]


# -- item 8: wait_for_completion(timeout=0) polls once; bad arguments are refused -----------


@pytest.mark.parametrize(("status", "terminal"), [("running", False), ("failed", True)])
def test_wait_for_completion_with_timeout_zero_polls_once(status: str, terminal: bool) -> None:
    platform = Platform(status)
    with sync_client(platform) as client:
        if terminal:
            run = client.platform.runs.wait_for_completion("run-1", timeout=0)
            assert run.status == status
        else:
            with pytest.raises(KneoWaitTimeoutError) as caught:
                client.platform.runs.wait_for_completion("run-1", timeout=0)
            assert (caught.value.polls, caught.value.last_status) == (1, "running")
    assert platform.urls == ["https://kneo.test/v1/runs/run-1"]


@pytest.mark.anyio
async def test_async_wait_for_completion_with_timeout_zero_polls_once() -> None:
    platform = Platform("running")
    async with async_client(platform) as client:
        with pytest.raises(KneoWaitTimeoutError) as caught:
            await client.platform.runs.wait_for_completion("run-1", timeout=0)
    assert caught.value.polls == 1
    assert platform.urls == ["https://kneo.test/v1/runs/run-1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"timeout": -5},
            "timeout must be None (wait indefinitely) or a finite number of seconds >= 0, not -5",
        ),
        (
            {"timeout": math.nan},
            "timeout must be None (wait indefinitely) or a finite number of seconds >= 0, not nan",
        ),
        (
            {"poll_interval": -1},
            "poll_interval must be a finite number of seconds >= 0, not -1",
        ),
        (
            {"poll_interval": math.nan},
            "poll_interval must be a finite number of seconds >= 0, not nan",
        ),
    ],
)
def test_wait_for_completion_refuses_bad_arguments_before_the_first_poll(
    kwargs: dict[str, Any], message: str
) -> None:
    platform = Platform()
    with sync_client(platform) as client, pytest.raises(KneoUsageError) as caught:
        client.platform.runs.wait_for_completion("run-1", **kwargs)
    assert str(caught.value) == message
    assert platform.urls == []
