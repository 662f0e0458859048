"""docs/usage.md's recovery from an undecodable POST answer runs as written, on both sockets
and memory, and does what it promises: the same key returns the run that was created, and
no second run is made."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault, memory_driver, serve_emulator
from tests.integration.commands import ROOT

USAGE = ROOT / "docs" / "usage.md"


def recovery_example() -> str:
    text = USAGE.read_text(encoding="utf-8").split("After a POST, recover", 1)[1]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    return blocks[0]


@pytest.fixture(params=["loopback", "memory"])
def emulated(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, SyncKneoClient]]:
    emulator = Emulator()
    if request.param == "memory":
        profile = Profile(name="memory", url="https://emulator.test", api_key=emulator.api_key)
        with SyncKneoClient(profile, driver=memory_driver(emulator)) as client:
            yield emulator, client
        return
    with serve_emulator(emulator) as running, SyncKneoClient(running.profile()) as client:
        yield emulator, client


def test_the_recovery_example_replays_the_run_instead_of_making_another(
    emulated: tuple[Emulator, SyncKneoClient],
) -> None:
    emulator, client = emulated
    emulator.faults.script("POST", "/v1/runs", Fault.malformed_json())
    namespace: dict[str, Any] = {
        "client": client,
        "body": {"spec_id": "support-triage"},
        "key": "usage-recovery-1",
        "log": logging.getLogger("usage-example"),
    }
    exec(recovery_example(), namespace)
    raw = namespace["raw"]
    assert raw.replayed
    runs = client.platform.runs.list(limit=1000).runs
    assert [r.run_id for r in runs] == [raw.parsed.run_id]
