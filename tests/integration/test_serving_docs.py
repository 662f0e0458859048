"""The in-process examples of docs/emulator.md, "Serving the emulator", run as written."""

from __future__ import annotations

import re

import pytest

from tests.integration.commands import ROOT
from tests.integration.docs_examples import DOC, serving_examples

pytestmark = pytest.mark.timeout(30)


def test_the_section_has_the_two_in_process_examples_and_the_fixture_example() -> None:
    examples = serving_examples()
    assert [("serve_emulator(" in e, "serve_emulator_async(" in e) for e in examples[:2]] == [
        (True, False),
        (False, True),
    ]
    assert "def test_" in examples[2]


def test_serve_emulator_example_runs() -> None:
    exec(compile(serving_examples()[0], str(DOC), "exec"), {})


def test_serve_emulator_async_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(serving_examples()[1], str(DOC), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("http://127.0.0.1:")
    assert printed.endswith(" ready=True\n")


def test_the_readme_shows_the_documented_three_line_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Test against the emulator", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    assert match.group(1) in serving_examples()[2]  # so it runs in test_pytest_plugin
