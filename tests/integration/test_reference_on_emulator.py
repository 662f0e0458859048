"""The contract's code examples, run as written against the emulator over HTTP.

The examples are the verbatim copies kept in ``tests/client/test_reference_examples.py``;
here the platform behind ``KNEO_URL`` / ``KNEO_API_KEY`` is the emulator (served from a
background thread), not a canned fake. Its runs take no time (zero queue and step
durations), so each example's first poll already sees the run where it stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient, KneoNotFoundError, RetryPolicy
from kneo_client.core.errors import (
    KneoIdempotencyMismatchError,
    KneoServerError,
    KneoServiceUnavailableError,
)
from kneo_client.testing import Emulator, Fault, RunningEmulator, RunTiming, serve_emulator
from kneo_proto.models import RunCreateRequestDict
from tests.client.test_reference_examples import (
    END_TO_END_EXAMPLE,
    ERRORS_EXAMPLE,
    FORWARD_COMPATIBILITY_EXAMPLE,
    ITERATE_ALL_RECIPE,
    KNEO_CLIENT_EXAMPLE,
    NON_DEFAULT_TERMINAL_RECIPE,
    RETRY_POLICY_EXAMPLE,
    SYNC_TRANSPORT_EXAMPLE,
    TRANSPORT_EXAMPLE,
    VALIDATE_THEN_COMPILE_EXAMPLE,
    run_program,
    wrap,
)

pytestmark = pytest.mark.timeout(30)
LIMIT = 10.0
LOG = logging.getLogger("tests.reference_on_emulator")
INSTANT = RunTiming(queued_seconds=0.0, step_seconds=0.0)


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningEmulator]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("KNEO_PROFILE", "KNEO_AUTH_SCHEME", "KNEO_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    with serve_emulator(Emulator(run_timing=INSTANT)) as running:
        monkeypatch.setenv("KNEO_URL", running.url)
        monkeypatch.setenv("KNEO_API_KEY", running.api_key)
        yield running


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_kneo_client_example(
    running: RunningEmulator, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_program(KNEO_CLIENT_EXAMPLE, backend)
    assert capsys.readouterr().out == "ok=True\nfinal=completed\n"
    assert running.emulator.counters.operations["create_run"] == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_transport_examples(
    running: RunningEmulator, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_program(TRANSPORT_EXAMPLE, backend)
    exec(compile(SYNC_TRANSPORT_EXAMPLE, "<example>", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert [line[:39] for line in printed] == ["{'ok': True, 'service': 'kneo-emulator'"] * 2
    assert running.emulator.counters.requests["/v1/healthz"] == 2


@pytest.mark.anyio
async def test_retry_policy_example(running: RunningEmulator) -> None:
    aggressive_part, no_retry_part = RETRY_POLICY_EXAMPLE.split("\n# No retries")
    namespace: dict[str, Any] = {"profile": running.profile()}
    exec(compile(aggressive_part, "<example>", "exec"), namespace)
    aggressive: KneoClient = namespace["client"]
    exec(compile("# No retries" + no_retry_part, "<example>", "exec"), namespace)
    no_retries: KneoClient = namespace["client"]
    running.emulator.faults.script("GET", "/v1/healthz", Fault.error(503), Fault.error(503))
    async with aggressive, no_retries:
        with pytest.raises(KneoServiceUnavailableError) as caught:
            await no_retries.platform.health.healthz()
        assert caught.value.attempts == 1
        started = time.monotonic()
        assert (await aggressive.platform.health.healthz.raw()).attempts == 2
    assert 0.4 <= time.monotonic() - started < 2.0  # base_delay=0.5, 10 % jitter


@pytest.mark.anyio
async def test_errors_example(running: RunningEmulator, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio  # the example sleeps with asyncio; it is in scope where it is written

    example = wrap(ERRORS_EXAMPLE, "client", "payload", "key", "log", asyncio=asyncio)
    running.emulator.faults.script("POST", "/v1/runs", Fault.error(500))
    async with KneoClient.from_profile(retry_policy=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(KneoServerError) as failed:
            await example(client, {"spec_id": "my-spec"}, "key-0", LOG)
        await example(client, {"spec_id": "my-spec"}, "key-1", LOG)
        with pytest.raises(KneoIdempotencyMismatchError):
            await example(client, {"spec_id": "nightly-report"}, "key-1", LOG)
    assert f"create_run failed status=500 rid={failed.value.request_id}" in caplog.text
    assert "mismatch on key='key-1'" in caplog.text
    assert running.emulator.counters.executions["key-1"] == 1


@pytest.mark.anyio
async def test_end_to_end_run_example(
    running: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with anyio.fail_after(LIMIT):
        result = await wrap(END_TO_END_EXAMPLE, KneoClient=KneoClient)()
    assert result is not None
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "final=completed"
    assert printed[1].startswith("TraceEvent(event_id=")
    assert len(printed) == 1 + result["trace"].count


@pytest.mark.anyio
async def test_validate_then_compile_example(
    running: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    example = wrap(VALIDATE_THEN_COMPILE_EXAMPLE, "spec_text", KneoClient=KneoClient)
    good = "name: hello\nsteps:\n  - name: greet\n    kind: tool\n    tool: http.get\n"
    result = await example(good)
    assert result is not None
    assert (result["validated"].valid, result["compiled"].ok) == (True, True)
    assert await example(good.replace("kind: tool", "kind: wish")) is None
    assert "Diagnostic(severity='error'" in capsys.readouterr().out
    assert running.emulator.counters.operations["compile_spec"] == 1


@pytest.mark.anyio
async def test_iterate_all_recipe(running: RunningEmulator) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(ITERATE_ALL_RECIPE, "<example>", "exec"), namespace)
    all_audit_events = namespace["all_audit_events"]
    async with KneoClient.from_profile() as client:
        body: RunCreateRequestDict = {"spec_id": "my-spec"}
        async with anyio.create_task_group() as tg:
            for _ in range(205):  # more than the recipe's page of 200
                tg.start_soon(client.platform.runs.create, body)
        with anyio.fail_after(LIMIT):
            every = [event.event_id async for event in all_audit_events(client)]
            nobody = [e async for e in all_audit_events(client, principal="read-only")]
    assert len(every) == len(set(every)) == 205
    assert nobody == []
    assert running.emulator.counters.requests["/v1/audit-events"] == 2 + 1


@pytest.mark.anyio
async def test_wait_for_non_default_terminal_status_recipe(running: RunningEmulator) -> None:
    example = wrap(NON_DEFAULT_TERMINAL_RECIPE, "client", "run_id")
    async with KneoClient.from_profile() as client:
        run = await client.platform.runs.create({"spec_id": "support-triage"})
        with anyio.fail_after(LIMIT):
            result = await example(client, run.run_id)
    assert result is not None
    assert result["terminal"].status == "paused_human_review"
    assert result["terminal"].continuation_id


@pytest.mark.anyio
async def test_forward_compatibility_example_meets_a_404_on_an_unknown_path(
    running: RunningEmulator,
) -> None:
    with pytest.raises(KneoNotFoundError) as caught:
        await wrap(FORWARD_COMPATIBILITY_EXAMPLE, KneoClient=KneoClient)()
    assert caught.value.code == "not_found"
