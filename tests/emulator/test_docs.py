"""The Python examples of docs/emulator.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "emulator.md"
SECTIONS = ("## Quick start", "## Faults", "## Rewriting replies")


def example(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no Python example under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("heading", SECTIONS)
def test_docs_example_runs(heading: str) -> None:
    exec(compile(example(heading), str(DOC), "exec"), {})


def test_docs_has_a_spec_format_section_with_a_valid_spec() -> None:
    from kneo_client.testing._agent_specs import analyze

    section = DOC.read_text(encoding="utf-8").split("## Spec format", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    analysis = analyze(match.group(1))
    assert analysis.spec is not None
    assert [d.code for d in analysis.diagnostics] == [
        "unreachable_step"
    ] or analysis.diagnostics == []
