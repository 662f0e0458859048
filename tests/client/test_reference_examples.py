"""Every code example of the contract (``kneo-client-api-reference.txt``), run as written
against the platform emulator on a loopback socket.

Each example is copied verbatim into a string (the reference's text rendering lost the
indentation, which is restored; nothing else is changed). Whole programs run as they are,
``asyncio.run(main())`` included; on trio the last line is swapped for ``trio.run(main)``.
Fragments are only wrapped: in an ``async def`` whose parameters supply the names the
fragment assumes (``client``, ``payload``, ...) and which returns ``locals()``.

The environment is what a user would have: ``KNEO_URL`` and ``KNEO_API_KEY`` point at the
loopback server, and ``XDG_CONFIG_HOME`` points at an empty directory, so the default config
file does not exist.
"""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpcore2
import msgspec
import pytest
import trio

from kneo_client import KneoClient, Profile, RetryPolicy
from kneo_client.core.errors import (
    KneoIdempotencyMismatchError,
    KneoServerError,
    KneoServiceUnavailableError,
)
from kneo_client.core.profiles import default_config_path
from kneo_client.core.transport import Transport
from kneo_client.testing import Fault, Reply, RunTiming
from kneo_proto import Request, Response
from tests.support.emulated import API_KEY, Emulated, replace_response, serve

# A broken client must fail a test, not hang it: the examples wait up to 600 s as written.
# pytest-timeout bounds the sync tests; async ones bound their waits with anyio.fail_after
# (a SIGALRM cannot interrupt anyio's trio runner cleanly).
pytestmark = pytest.mark.timeout(20)
WAIT_LIMIT = 10.0

# -- the examples, verbatim ------------------------------------------------------------------

KNEO_CLIENT_EXAMPLE = """\
import asyncio
from kneo_client import KneoClient

async def main():
    async with KneoClient.from_profile() as client:
        ready = await client.platform.health.readyz()
        print(f"ok={ready.ok}")
        run = await client.platform.runs.create({"spec_id": "my-spec"})
        terminal = await client.platform.runs.wait_for_completion(run.run_id, timeout=120)
        print(f"final={terminal.status}")

asyncio.run(main())
"""

TRANSPORT_EXAMPLE = """\
import asyncio
from kneo_client.core.profiles import load_profile
from kneo_client.core.transport import Transport

async def main():
    profile = load_profile()
    async with Transport(profile) as t:
        resp = await t.request("GET", "/v1/healthz")
        print(resp.json())

asyncio.run(main())
"""

SYNC_TRANSPORT_EXAMPLE = """\
from kneo_client.core.profiles import load_profile
from kneo_client.core.transport import SyncTransport

with SyncTransport(load_profile()) as t:
    resp = t.request("GET", "/v1/healthz")
    print(resp.json())
"""

TOML_EXAMPLE = """\
# ~/.config/kneo/client.toml
[default]
url = "https://kneo.example.com"
api_key = "prod-key"
auth_scheme = "bearer"
timeout = 30.0

[staging]
url = "https://staging-kneo.example.com"
api_key = "staging-key"
"""

LOAD_PROFILE_EXAMPLE = """\
from kneo_client.core.profiles import load_profile
p = load_profile() # 'default' from TOML + env
p = load_profile("staging") # explicit profile
p = load_profile(url="https://ad-hoc", api_key=tok) # explicit kwargs win
"""

RETRY_POLICY_EXAMPLE = """\
from kneo_client import KneoClient
from kneo_client.core.retries import RetryPolicy

# Aggressive policy for a flaky network
client = KneoClient(profile, retry_policy=RetryPolicy(max_attempts=8, base_delay=0.5))

# No retries (first failure surfaces immediately)
client = KneoClient(profile, retry_policy=RetryPolicy(max_attempts=1))
"""

ERRORS_EXAMPLE = """\
from kneo_client.core.errors import KneoError, KneoIdempotencyMismatchError, KneoRateLimited
try:
    run = await client.platform.runs.create(payload, idempotency_key=key)
except KneoIdempotencyMismatchError as exc:
    # Same key reused with a different payload — almost always a caller bug.
    log.error("mismatch on key=%r body=%r", exc.idempotency_key, exc.body)
    raise
except KneoRateLimited as exc:
    await asyncio.sleep(exc.retry_after or 10)
except KneoError as exc:
    log.error("create_run failed status=%s rid=%s", exc.status, exc.request_id)
    raise
"""

END_TO_END_EXAMPLE = """\
async with KneoClient.from_profile() as client:
    created = await client.platform.runs.create({"spec_id": "my-spec"})
    terminal = await client.platform.runs.wait_for_completion(
        created.run_id, poll_interval=2.0, timeout=600
    )
    print(f"final={terminal.status}")
    trace = await client.platform.runs.trace(created.run_id, limit=20)
    for ev in trace.events:
        print(ev)
"""

VALIDATE_THEN_COMPILE_EXAMPLE = """\
async with KneoClient.from_profile() as client:
    payload = {"spec": spec_text}
    validated = await client.agent.specs.validate(payload)
    if not validated.valid:
        for d in validated.diagnostics or []:
            print(d)
        return
    compiled = await client.agent.specs.compile(payload)
    if not compiled.ok:
        for d in compiled.diagnostics or []:
            print(d)
"""

FORWARD_COMPATIBILITY_EXAMPLE = """\
async with KneoClient.from_profile() as client:
    resp = await client._transport.request("GET", "/v1/some/new/endpoint")
    payload = resp.json()
"""

ITERATE_ALL_RECIPE = """\
from kneo_client.core.pagination import PaginatedResult, iterate_all

async def all_audit_events(client, **filters):
    async def fetch_page(limit, offset):
        resp = await client.platform.audit.list(limit=limit, offset=offset, **filters)
        return PaginatedResult(
            items=resp.events,
            total=getattr(resp, "total", 0) or 0,
            limit=limit, offset=offset,
        )
    async for event in iterate_all(fetch_page, page_size=200):
        yield event
"""

NON_DEFAULT_TERMINAL_RECIPE = """\
terminal = await client.platform.runs.wait_for_completion(
    run_id,
    poll_interval=2.0,
    timeout=300,
    terminal_statuses={"completed", "failed", "cancelled", "paused_human_review"},
)
"""

# -- running them ----------------------------------------------------------------------------

Example = Callable[..., Awaitable[dict[str, Any] | None]]


def run_program(source: str, backend: str) -> None:
    """Run a whole example program; on trio, ``asyncio.run(main())`` becomes ``trio.run``."""
    namespace: dict[str, Any] = {"__name__": "__example__"}
    if backend == "asyncio":
        exec(compile(source, "<example>", "exec"), namespace)
        return
    body, last_line = source.rstrip().rsplit("\n", 1)
    assert last_line == "asyncio.run(main())"
    exec(compile(body, "<example>", "exec"), namespace)
    trio.run(namespace["main"])


def wrap(fragment: str, *params: str, **names: Any) -> Example:
    """Wrap ``fragment`` in ``async def example(*params)`` returning its ``locals()``."""
    source = (
        f"async def example({', '.join(params)}):\n"
        + textwrap.indent(fragment, "    ")
        + "    return locals()\n"
    )
    namespace: dict[str, Any] = dict(names)
    exec(compile(source, "<example>", "exec"), namespace)
    example: Example = namespace["example"]
    return example


# Runs take no platform time: the examples wait with real sleeps of 2 s between polls, so
# a run is terminal (or paused for review) at its first poll.
INSTANT = RunTiming(queued_seconds=0.0, step_seconds=0.0)
REVIEW_SPEC = "support-triage"  # pauses for a human review


@pytest.fixture
def emulated() -> Emulated:
    return Emulated(timing=INSTANT)


@pytest.fixture
def url(emulated: Emulated, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("KNEO_PROFILE", "KNEO_AUTH_SCHEME", "KNEO_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert not default_config_path().exists()
    assert default_config_path().is_relative_to(tmp_path)
    with serve(emulated) as running:
        monkeypatch.setenv("KNEO_URL", running.url)
        monkeypatch.setenv("KNEO_API_KEY", API_KEY)
        yield running.url


@pytest.fixture
def profile(url: str) -> Profile:
    return Profile(name="default", url=url, api_key=API_KEY)


# -- whole programs --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_kneo_client_example(
    url: str, emulated: Emulated, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_program(KNEO_CLIENT_EXAMPLE, backend)
    assert capsys.readouterr().out == "ok=True\nfinal=completed\n"
    (run_id,) = emulated.run_ids()
    assert emulated.requests[f"/v1/runs/{run_id}"] == 1
    assert emulated.log[-1].header("authorization") == f"Bearer {API_KEY}"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_transport_direct_use_example(
    url: str, emulated: Emulated, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_program(TRANSPORT_EXAMPLE, backend)
    printed = capsys.readouterr().out
    assert printed.startswith("{'ok': True, 'service': 'kneo-emulator'")
    assert emulated.requests["/v1/healthz"] == 1


def test_sync_transport_example(
    url: str, emulated: Emulated, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(SYNC_TRANSPORT_EXAMPLE, "<example>", "exec"), {})
    assert capsys.readouterr().out.startswith("{'ok': True, 'service': 'kneo-emulator'")
    assert emulated.requests["/v1/healthz"] == 1


# -- profiles --------------------------------------------------------------------------------


def profiles_per_line(tok: str) -> list[Profile]:
    """Run the load_profile example one statement at a time; return ``p`` after each."""
    namespace: dict[str, Any] = {"tok": tok}
    results: list[Profile] = []
    for line in LOAD_PROFILE_EXAMPLE.splitlines():
        exec(compile(line, "<example>", "exec"), namespace)
        if line.startswith("p = "):
            results.append(namespace["p"])
    return results


def write_default_config() -> Path:
    path = default_config_path()
    path.parent.mkdir(parents=True)
    path.write_text(TOML_EXAMPLE, encoding="utf-8")
    return path


def test_toml_config_and_load_profile_examples(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write_default_config()
    monkeypatch.delenv("KNEO_URL")
    monkeypatch.delenv("KNEO_API_KEY")
    default, staging, ad_hoc = profiles_per_line(tok="ad-hoc-key")
    assert (default.name, default.url, default.api_key) == (
        "default",
        "https://kneo.example.com",
        "prod-key",
    )
    assert (default.auth_scheme.value, default.timeout) == ("bearer", 30.0)
    assert (staging.name, staging.url, staging.api_key) == (
        "staging",
        "https://staging-kneo.example.com",
        "staging-key",
    )
    assert (ad_hoc.url, ad_hoc.api_key) == ("https://ad-hoc", "ad-hoc-key")


def test_load_profile_example_env_overrides_toml_and_kwargs_override_env(url: str) -> None:
    write_default_config()
    default, staging, ad_hoc = profiles_per_line(tok="ad-hoc-key")
    assert (default.url, default.api_key) == (url, API_KEY)
    assert (staging.name, staging.url, staging.api_key) == ("staging", url, API_KEY)
    assert (ad_hoc.url, ad_hoc.api_key) == ("https://ad-hoc", "ad-hoc-key")


# -- retry policy ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_retry_policy_example(profile: Profile, emulated: Emulated) -> None:
    aggressive_part, no_retry_part = RETRY_POLICY_EXAMPLE.split("\n# No retries")
    namespace: dict[str, Any] = {"profile": profile}
    exec(compile(aggressive_part, "<example>", "exec"), namespace)
    aggressive: KneoClient = namespace["client"]
    exec(compile("# No retries" + no_retry_part, "<example>", "exec"), namespace)
    no_retries: KneoClient = namespace["client"]
    emulated.emulator.faults.script("GET", "/v1/healthz", Fault.error(503), Fault.error(503))
    async with aggressive, no_retries:
        with pytest.raises(KneoServiceUnavailableError) as caught:
            await no_retries.platform.health.healthz()
        assert caught.value.attempts == 1
        started = time.monotonic()
        response = await aggressive.platform.health.healthz.raw()
        waited = time.monotonic() - started
    assert response.attempts == 2
    assert 0.4 <= waited < 2.0  # base_delay=0.5 with 10 % jitter
    assert emulated.requests["/v1/healthz"] == 3


# -- errors ----------------------------------------------------------------------------------

LOG = logging.getLogger("tests.reference_examples")


def errors_example() -> Example:
    import asyncio  # the example sleeps with asyncio; it is in scope where it is written

    return wrap(ERRORS_EXAMPLE, "client", "payload", "key", "log", asyncio=asyncio)


@pytest.mark.anyio
async def test_errors_example_reraises_idempotency_mismatch(
    url: str, emulated: Emulated, caplog: pytest.LogCaptureFixture
) -> None:
    example = errors_example()
    async with KneoClient.from_profile() as client:
        await example(client, {"spec_id": "my-spec"}, "key-1", LOG)
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            await example(client, {"spec_id": "nightly-report"}, "key-1", LOG)
    assert caught.value.idempotency_key == "key-1"
    assert emulated.executions["key-1"] == 1
    assert "mismatch on key='key-1' body={'error': {'code': 'idempotency_key_mismatch'" in (
        caplog.text
    )


@pytest.mark.anyio
async def test_errors_example_logs_and_reraises_other_errors(
    url: str, emulated: Emulated, caplog: pytest.LogCaptureFixture
) -> None:
    emulated.emulator.faults.script("POST", "/v1/runs", Fault.error(500))
    async with KneoClient.from_profile() as client:
        with pytest.raises(KneoServerError) as caught:
            await errors_example()(client, {"spec_id": "my-spec"}, "key-2", LOG)
    assert f"create_run failed status=500 rid={caught.value.request_id}" in caplog.text
    assert caught.value.request_id is not None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the example calls asyncio.sleep
@pytest.mark.anyio
async def test_errors_example_sleeps_out_a_rate_limit(url: str, emulated: Emulated) -> None:
    emulated.emulator.faults.script("POST", "/v1/runs", Fault.rate_limited(retry_after=1))
    async with KneoClient.from_profile(retry_policy=RetryPolicy(max_attempts=1)) as client:
        started = time.monotonic()
        result = await errors_example()(client, {"spec_id": "my-spec"}, "key-3", LOG)
        waited = time.monotonic() - started
    assert result is not None
    assert "run" not in result
    assert 0.95 <= waited < 3.0
    assert emulated.executions["key-3"] == 0


# -- runs, specs, pagination, forward compatibility ------------------------------------------


@pytest.mark.anyio
async def test_end_to_end_run_example(
    url: str, emulated: Emulated, capsys: pytest.CaptureFixture[str]
) -> None:
    with anyio.fail_after(WAIT_LIMIT):
        result = await wrap(END_TO_END_EXAMPLE, KneoClient=KneoClient)()
    assert result is not None
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "final=completed"
    run_id = result["created"].run_id
    trace = msgspec.json.decode(emulated.lookup("GET", f"/v1/runs/{run_id}/trace?limit=20").body)
    assert len(printed) == 1 + len(trace["events"]) > 1  # one line per event of the trace
    assert all(line.startswith("TraceEvent(") for line in printed[1:])
    assert result["terminal"].run_id == run_id


@pytest.mark.anyio
async def test_validate_then_compile_example(url: str, emulated: Emulated) -> None:
    result = await wrap(VALIDATE_THEN_COMPILE_EXAMPLE, "spec_text", KneoClient=KneoClient)(
        "name: demo\nsteps:\n  - name: fetch\n    kind: tool\n    tool: http.get\n"
    )
    assert result is not None
    assert result["validated"].valid
    assert result["compiled"].ok
    assert emulated.requests["/v1/specs/compile"] == 1


@pytest.mark.anyio
async def test_validate_then_compile_example_stops_on_diagnostics(
    url: str, emulated: Emulated, capsys: pytest.CaptureFixture[str]
) -> None:
    example = wrap(VALIDATE_THEN_COMPILE_EXAMPLE, "spec_text", KneoClient=KneoClient)
    assert await example("name: demo\n") is None  # no steps
    assert capsys.readouterr().out.startswith("Diagnostic(severity='error'")
    assert emulated.requests["/v1/specs/compile"] == 0


CI_KEY = "kneo-test-ci-key-0123456789"


def seed_audit_events(emulated: Emulated, count: int) -> None:
    """``count`` audit events, every other one by the principal ``svc:ci``."""
    emulated.emulator.add_key(CI_KEY, principal="svc:ci")
    for n in range(count):
        key = CI_KEY if n % 2 else None
        emulated.lookup("PUT", "/v1/policies/environment/seeded", {}, key=key)


@pytest.mark.anyio
async def test_iterate_all_recipe(url: str, emulated: Emulated) -> None:
    seed_audit_events(emulated, 450)
    namespace: dict[str, Any] = {}
    exec(compile(ITERATE_ALL_RECIPE, "<example>", "exec"), namespace)
    all_audit_events = namespace["all_audit_events"]
    async with KneoClient.from_profile() as client:
        with anyio.fail_after(WAIT_LIMIT):
            every = [event.event_id async for event in all_audit_events(client)]
            mine = [e async for e in all_audit_events(client, principal="svc:ci")]
    assert len(every) == len(set(every)) == 450
    assert len(mine) == 225
    assert {e.principal for e in mine} == {"svc:ci"}
    assert emulated.requests["/v1/audit-events"] == 3 + 2


@pytest.mark.anyio
async def test_wait_for_non_default_terminal_status_recipe(url: str, emulated: Emulated) -> None:
    example = wrap(NON_DEFAULT_TERMINAL_RECIPE, "client", "run_id")
    async with KneoClient.from_profile() as client:
        run = await client.platform.runs.create({"spec_id": REVIEW_SPEC})
        with anyio.fail_after(WAIT_LIMIT):
            result = await example(client, run.run_id)
    assert result is not None
    assert result["terminal"].status == "paused_human_review"
    pending = emulated.lookup("GET", "/v1/human-tasks?status=pending")
    (task,) = [t for t in msgspec.json.decode(pending.body)["tasks"] if t["run_id"] == run.run_id]
    assert result["terminal"].continuation_id == task["continuation_id"]


def new_endpoint(request: Request, reply: Reply) -> Reply:
    """A route the platform gained after this client was written."""
    if request.target != "/v1/some/new/endpoint":
        return reply
    body = msgspec.json.encode({"feature": "new", "items": [1, 2]})
    return replace_response(reply, Response(200, (("Content-Type", "application/json"),), body))


@pytest.mark.anyio
async def test_forward_compatibility_example(url: str, emulated: Emulated) -> None:
    emulated.rewrites.append(new_endpoint)
    result = await wrap(FORWARD_COMPATIBILITY_EXAMPLE, KneoClient=KneoClient)()
    assert result is not None
    assert result["payload"] == {"feature": "new", "items": [1, 2]}
    assert result["resp"].status_code == 200


@pytest.mark.anyio
async def test_bring_your_own_pool_is_left_open(profile: Profile, emulated: Emulated) -> None:
    """The "Bring your own httpx client" recipe runs as written in ``test_httpx_recipe.py``.
    Its httpcore2 equivalent passes a caller-owned ``httpcore2.AsyncConnectionPool`` as
    ``http_client``; ``Transport.aclose()`` must leave that pool (and its connection) open.
    """
    shared = httpcore2.AsyncConnectionPool(max_connections=100, max_keepalive_connections=20)
    try:
        async with Transport(profile, http_client=shared) as t:
            assert (await t.request("GET", "/v1/healthz")).json()["ok"] is True
        assert len(shared.connections) == 1
        assert not shared.connections[0].is_closed()
        async with Transport(profile, http_client=shared) as again:
            await again.request("GET", "/v1/livez")
        assert len(shared.connections) == 1
    finally:
        await shared.aclose()
    assert shared.connections == []
