"""User code as mypy --strict sees it: correct calls type-check, and typical mistakes do not.

Every deliberate mistake below carries ``# type: ignore[<code>]``. mypy's strict mode
(``warn_unused_ignores``) fails on an ignore that suppresses nothing, so if a signature were
loosened (``dict[str, Any]`` bodies, ``str`` sort orders, ``Iterable[str]`` statuses) and mypy
stopped reporting one of these mistakes, the CI mypy step (``tests`` is in mypy's ``files``)
would fail. The functions are never called: pytest only imports this module. The test at the
end runs mypy on a copy of this file without the ignores and checks that exactly the marked
lines fail, with the marked codes, so the check also runs with the tests.

Through the facades' ``ParamSpec`` binding mypy reports a bad dict body as ``arg-type``
(``dict[str, str]`` is not ``HumanResumeRequest | HumanResumeRequestDict``) rather than naming
the key as ``typeddict-unknown-key`` would; the call is refused all the same.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import assert_type, cast

import pytest

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient
from kneo_proto.models import (
    HumanResumeRequest,
    HumanResumeResponse,
    RunCreateRequest,
    RunCreateRequestDict,
    RunCreateResponse,
    RunListResponse,
    RunStatus,
    RunStatusResponse,
    SpecValidateResponse,
    TraceResponse,
)


async def async_user_code(client: KneoClient) -> None:
    runs = client.platform.runs
    body: RunCreateRequestDict = {"spec_id": "s", "inputs": {"n": 1}}
    assert_type(await runs.create(body), RunCreateResponse)
    assert_type(await runs.create(RunCreateRequest(spec_id="s")), RunCreateResponse)
    assert_type(await runs.list(status="failed", sort_by="created_at"), RunListResponse)
    assert_type(await runs.trace("r", sort_by="sequence", sort_order="desc"), TraceResponse)
    done = await runs.wait_for_completion("r", terminal_statuses={"completed", "failed"})
    assert_type(done, RunStatusResponse)
    assert_type(
        await runs.wait_for_completion("r", terminal_statuses=["completed"]), RunStatusResponse
    )
    resumed = await client.platform.human_tasks.resume("c", {"decision": "approve"})
    assert_type(resumed, HumanResumeResponse)
    assert_type(await client.agent.specs.validate({"spec": "x"}), SpecValidateResponse)

    # The mistakes: each must stay an error.
    await runs.create({"spec_id": "s", "input": {}})  # type: ignore[arg-type]
    await runs.create({"spec_id": 1})  # type: ignore[arg-type]
    await runs.list(sort_order="descending")  # type: ignore[arg-type]
    await runs.list(sort_by="updated")  # type: ignore[arg-type]
    await runs.list(status="complete")  # type: ignore[arg-type]
    await runs.checkpoints("r", sort_by="timestamp")  # type: ignore[arg-type]
    await client.platform.audit.list(sort_by="type")  # type: ignore[arg-type]
    await client.platform.human_tasks.resume("c", {"decision": "approved"})  # type: ignore[arg-type]
    await client.platform.human_tasks.resume("c", {"comment": "ok"})  # type: ignore[arg-type]
    await runs.wait_for_completion("r", terminal_statuses="completed")  # type: ignore[arg-type]
    await client.agent.specs.validate({"spec": "x", "formt": "yaml"})  # type: ignore[arg-type]
    HumanResumeRequest(decision="approve", coment="x")  # type: ignore[call-arg]


def sync_user_code(client: SyncKneoClient) -> None:
    runs = client.platform.runs
    assert_type(runs.create({"spec_id": "s", "labels": {"team": "ops"}}), RunCreateResponse)
    assert_type(runs.list(sort_by="status", sort_order="asc"), RunListResponse)
    for run in runs.iter_all(status="running", sort_by="updated_at"):
        assert_type(run, RunStatusResponse)
    assert_type(runs.wait_for_completion("r", terminal_statuses=("completed",)), RunStatusResponse)
    # Statuses are open: one the platform adds later is filtered with a cast.
    assert_type(runs.list(status=cast(RunStatus, "archived")), RunListResponse)

    # The mistakes: each must stay an error.
    runs.create({"spec_id": "s", "input": {}})  # type: ignore[arg-type]
    runs.create({"spec_id": "s", "labels": {"team": 1}})  # type: ignore[arg-type]
    runs.list(sort_order="descending")  # type: ignore[arg-type]
    runs.list(sort_by="updated")  # type: ignore[arg-type]
    runs.iter_all(sort_order="up")  # type: ignore[arg-type]
    client.platform.human_tasks.resume("c", {"decision": "approved"})  # type: ignore[arg-type]
    client.platform.human_tasks.list(sort_by="created")  # type: ignore[arg-type]
    runs.wait_for_completion("r", terminal_statuses="completed")  # type: ignore[arg-type]
    client.platform.policies.environment_put("prod", {"max_run_seconds": "10"})  # type: ignore[arg-type]


def construction_user_code(profile: Profile) -> None:
    assert_type(KneoClient(url="https://kneo.example", api_key="k", max_retries=2), KneoClient)
    assert_type(SyncKneoClient.from_profile("prod", timeout=5.0), SyncKneoClient)
    assert_type(KneoClient(profile, retry_policy=RetryPolicy(max_attempts=1)), KneoClient)

    # The mistakes: each must stay an error.
    KneoClient(url="https://kneo.example", time_out=5)  # type: ignore[call-arg]
    SyncKneoClient.from_profile(time_out=5)  # type: ignore[call-arg]
    SyncKneoClient("https://kneo.example")  # type: ignore[arg-type]
    KneoClient(profile, max_retries="3")  # type: ignore[arg-type]


async def async_iteration_user_code(client: KneoClient) -> None:
    async for event in client.platform.audit.iter_all(run_id="r"):
        assert_type(event.event_type, str)
    for _ in client.platform.audit.iter_all():  # type: ignore[attr-defined]
        pass


# -- the check, at run time --------------------------------------------------------------------

MARKED = re.compile(r"  # type: ignore\[([a-z-]+)\]$")
REPORTED = re.compile(r"^[^:]+:(\d+): error: .*\[([a-z-]+)\]$")


@pytest.mark.timeout(90)
def test_mypy_reports_each_marked_mistake_and_nothing_else(tmp_path: Path) -> None:
    """mypy --strict (this project's config) on a copy of this file without its ignores must
    report exactly one error per marked line, with the marked code, and no other: so every
    mistake is caught and every ``assert_type`` holds. One mypy run: ~1 s with a warm cache,
    ~7 s cold (measured on 2 shared cores)."""
    pytest.importorskip("mypy", reason="mypy comes with the dev extra")
    source = Path(__file__).read_text(encoding="utf-8").splitlines()
    expected = {(n, m[1]) for n, line in enumerate(source, 1) if (m := MARKED.search(line))}
    assert len(expected) >= 20
    copy = tmp_path / "user_code.py"
    copy.write_text("\n".join(MARKED.sub("", line) for line in source) + "\n", encoding="utf-8")
    config = Path(__file__).parents[2] / "pyproject.toml"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), str(copy)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    reported = {
        (int(m[1]), m[2]) for line in result.stdout.splitlines() if (m := REPORTED.match(line))
    }
    assert reported == expected, result.stdout + result.stderr
