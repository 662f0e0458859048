"""Figures for the reliability families (T01-T40), as a pytest plugin.

A test records its figure line with the ``figure`` fixture, for example
``figure("T11", "200 truncated bodies per method and driver, 0 partial results")``. The lines are
printed in the terminal summary and written to ``$KNEO_FIGURES_FILE`` when that is set, so a
run's figures can be pasted into a report without reading test output. ``tests/conftest.py``
registers this module (``pytest_plugins``), so the fixture serves every test directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def figure() -> Callable[[str, str], None]:
    """Record one figure line under a plan test number such as ``"T11"``."""

    def record(test_id: str, line: str) -> None:
        _FIGURES.append((test_id, line))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    lines = [f"{test_id}: {line}" for test_id, line in sorted(_FIGURES)]
    terminalreporter.section("reliability figures")
    for line in lines:
        terminalreporter.write_line(line)
    path = os.environ.get("KNEO_FIGURES_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
