"""Both facades bind every endpoint declaration once, with identical signatures, and the
client-level promises (options, closing, repr, raw responses) hold."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client._bind import bind, paginate, poll_run
from kneo_client.agent import AgentClient, SpecsClient
from kneo_client.platform import (
    AuditClient,
    CredentialsClient,
    HealthClient,
    HumanTasksClient,
    PlatformClient,
    PoliciesClient,
    RunsClient,
)
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import KneoClientClosedError, Request, Response, endpoints
from tests.support.spec import spec_operation_count

NAMESPACES = (
    HealthClient,
    RunsClient,
    HumanTasksClient,
    AuditClient,
    CredentialsClient,
    PoliciesClient,
    SpecsClient,
)
KEY = "kneo_canary_facade_0123456789abcdef"
PROFILE = Profile(name="t", url="https://kneo.test", api_key=KEY)
HEALTH = msgspec.json.encode({"ok": True})


def bindings() -> dict[str, bind[Any, Any]]:
    found = {}
    for namespace in NAMESPACES:
        for name, value in vars(namespace).items():
            if isinstance(value, bind):
                found[f"{namespace.__name__}.{name}"] = value
    return found


def echo_health(request: Request) -> Response:
    return Response(200, (("X-Request-ID", request.header("x-request-id") or ""),), HEALTH)


def test_facades_bind_every_endpoint_exactly_once() -> None:
    bound = [b.endpoint for b in bindings().values()]
    assert len(bound) == len(endpoints.ALL) == spec_operation_count()
    assert {e.name for e in bound} == {e.name for e in endpoints.ALL}


@pytest.mark.parametrize("path", sorted(bindings()))
def test_async_and_blocking_bindings_share_signature_and_docs(path: str) -> None:
    namespace_name, attribute = path.split(".")
    namespace = next(n for n in NAMESPACES if n.__name__ == namespace_name)
    declared = bindings()[path].endpoint
    async_bound = getattr(namespace(KneoClient(PROFILE)._transport._session), attribute)
    sync_bound = getattr(
        namespace(SyncKneoClient(PROFILE, driver=MemoryDriver(echo_health))._transport._session),
        attribute,
    )
    assert inspect.signature(async_bound) == inspect.signature(sync_bound)
    assert inspect.signature(async_bound) == inspect.signature(declared)
    assert async_bound.__doc__ == sync_bound.__doc__ == declared.__doc__
    assert inspect.iscoroutinefunction(type(async_bound).__call__)
    assert not inspect.iscoroutinefunction(type(sync_bound).__call__)


def test_list_namespaces_offer_typed_iterators() -> None:
    pagers = [v for n in NAMESPACES for v in vars(n).values() if isinstance(v, paginate)]
    assert {p.endpoint.name for p in pagers} == {
        e.name for e in endpoints.ALL if e.route.items_field is not None
    }
    assert isinstance(vars(RunsClient)["wait_for_completion"], poll_run)


def test_clients_mount_platform_and_agent() -> None:
    client = KneoClient(PROFILE)
    assert isinstance(client.platform, PlatformClient)
    assert isinstance(client.agent, AgentClient)
    assert isinstance(client.platform.runs, RunsClient)


def test_client_repr_and_profile_repr_hide_the_key() -> None:
    client = SyncKneoClient(PROFILE, driver=MemoryDriver(echo_health))
    rendered = " ".join(
        [
            repr(client),
            repr(PROFILE),
            repr(client.platform),
            repr(client.platform.runs),
            str(PROFILE),
            repr(client.profile),
        ]
    )
    assert KEY not in rendered
    assert "redacted" in repr(PROFILE)


def test_blocking_client_raw_exposes_request_id_and_attempts() -> None:
    with SyncKneoClient(PROFILE, driver=MemoryDriver(echo_health)) as client:
        raw = client.platform.health.readyz.raw()
    assert raw.parsed.ok is True
    assert raw.status == 200
    assert raw.attempts == 1
    assert raw.request_id
    assert raw.idempotency_key is None


def test_with_options_sends_extra_headers_and_request_id() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return echo_health(request)

    client = SyncKneoClient(PROFILE, driver=MemoryDriver(handler))
    tuned = client.with_options(headers={"X-Team": "ops"}, request_id="req-42")
    tuned.platform.health.healthz()
    client.platform.health.healthz()
    assert seen[0].header("x-team") == "ops"
    assert seen[0].header("x-request-id") == "req-42"
    assert seen[1].header("x-team") is None
    assert seen[1].header("x-request-id") != "req-42"


def test_closed_blocking_client_refuses_calls() -> None:
    client = SyncKneoClient(PROFILE, driver=MemoryDriver(echo_health))
    client.close()
    client.close()
    with pytest.raises(KneoClientClosedError):
        client.platform.health.healthz()


@pytest.mark.anyio
async def test_closed_async_client_refuses_calls() -> None:
    client = KneoClient(PROFILE, driver=AsyncMemoryDriver(echo_health))
    assert (await client.platform.health.livez()).ok is True
    await client.aclose()
    await client.aclose()
    with pytest.raises(KneoClientClosedError):
        await client.platform.health.livez()


def test_from_profile_reads_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("KNEO_URL", "https://env.kneo.test")
    monkeypatch.setenv("KNEO_API_KEY", KEY)
    client = SyncKneoClient.from_profile(
        config_file=tmp_path / "missing.toml", driver=MemoryDriver(echo_health)
    )
    assert client.profile.url == "https://env.kneo.test"
    assert client.profile.name == "default"


def test_insecure_http_opt_in_logs_one_warning_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    profile = Profile(
        name="t", url="http://sidecar.kneo.invalid:8080", api_key=KEY, allow_insecure_http=True
    )
    with caplog.at_level("WARNING", logger="kneo_client.transport"):
        SyncKneoClient(profile, driver=MemoryDriver(echo_health)).close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "unencrypted" in warnings[0].getMessage()
    assert KEY not in warnings[0].getMessage()


def test_loopback_http_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    profile = Profile(name="t", url="http://127.0.0.1:9", api_key=KEY)
    with caplog.at_level("WARNING", logger="kneo_client.transport"):
        SyncKneoClient(profile, driver=MemoryDriver(echo_health)).close()
    assert caplog.records == []


@pytest.mark.parametrize("client_class", [KneoClient, SyncKneoClient])
@pytest.mark.parametrize(("keyword", "expected"), [(None, True), (False, False), (True, True)])
def test_clients_take_strict_responses_over_the_profile(
    client_class: type[KneoClient] | type[SyncKneoClient],
    keyword: bool | None,
    expected: bool,
) -> None:
    profile = Profile(name="p", url="http://127.0.0.1:9", api_key="k", strict_responses=True)
    client = client_class(profile, strict_responses=keyword)
    assert client.profile.strict_responses is expected
    assert client._transport._session.config.strict_responses is expected
