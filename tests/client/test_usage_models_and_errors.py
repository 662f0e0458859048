"""docs/usage.md's examples of ``KneoError.code``/``details`` and of ``to_dict``/``to_json``
run as written against the emulator, and print or build what their comments say."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, memory_driver

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


def example_after(marker: str) -> str:
    """The first Python block of docs/usage.md after ``marker``."""
    text = USAGE.read_text(encoding="utf-8").split(marker, 1)[1]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    return blocks[0]


@pytest.fixture
def client() -> Iterator[SyncKneoClient]:
    emulator = Emulator()
    profile = Profile(name="memory", url="https://emulator.test", api_key=emulator.api_key)
    with SyncKneoClient(profile, driver=memory_driver(emulator)) as client:
        yield client


def test_the_error_details_example_prints_the_refused_field(
    client: SyncKneoClient, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(example_after("so reading them never raises:"), {"client": client})
    assert capsys.readouterr().out.startswith("refused: environment ")


def test_the_to_dict_example_gives_the_run_as_builtins(client: SyncKneoClient) -> None:
    namespace: dict[str, Any] = {"client": client}
    exec(example_after("\n### Models, as dicts and JSON\n"), namespace)
    record = namespace["record"]
    assert record["spec_id"] == "support-triage"
    assert isinstance(record["created_at"], str)
    assert json.loads(json.dumps(record)) == record
    assert namespace["text"] == '{"spec_id":"support-triage"}'
