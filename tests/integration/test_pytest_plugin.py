"""The pytest plugin, as a downstream project meets it: installed, and used by short tests.

The downstream test file is the documented example (docs/emulator.md, "pytest fixtures")
followed by a few more tests; it runs in a fresh pytest process in an empty project, so the
fixtures come from the installed entry point alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.integration.commands import clean_env
from tests.integration.docs_examples import serving_examples

pytestmark = pytest.mark.timeout(60)

MORE_DOWNSTREAM_TESTS = """

@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_client_on_both_loops(kneo_client_async, anyio_backend):
    assert (await kneo_client_async.platform.runs.create({"spec_id": "my-spec"})).run_id


def test_emulator_counts_what_the_client_did(kneo_emulator, kneo_client_sync):
    kneo_client_sync.platform.runs.create({"spec_id": "my-spec"})
    assert kneo_emulator.emulator.counters.operations["create_run"] == 1


def test_each_test_gets_a_fresh_emulator(kneo_client_sync):
    assert kneo_client_sync.platform.runs.list().total == 0
"""


def test_plugin_is_registered_as_the_kneo_pytest11_entry_point() -> None:
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "kneo"]
    assert plugin.value == "kneo_client.testing.pytest_plugin"


def test_downstream_tests_use_the_fixtures_in_a_few_lines(tmp_path: Path) -> None:
    documented = serving_examples()[-1]
    assert documented.count("\ndef test_") + documented.count("\nasync def test_") == 3
    test_file = tmp_path / "test_downstream.py"
    test_file.write_text(documented + MORE_DOWNSTREAM_TESTS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # 7 tests, or 8 with an anyio whose default anyio_backend covers every installed loop.
    assert re.search(r"\b[78] passed", done.stdout), done.stdout
