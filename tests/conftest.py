"""Shared test configuration.

- Async tests run on asyncio and on trio (``anyio_backend``).
- The network guard (``tests/network_guard.py``, plan T40) wraps every test: a connect or a
  lookup outside loopback is refused before any packet and fails the test.
- ``figure`` records a reliability figure line from any test directory; the lines are
  printed by the ``tests.support.figures`` plugin, together with the guard's session totals.
- ``plan(*ids)`` links a test to the reliability plan's test IDs (T01-T40);
  ``tests/test_plan_markers.py`` checks that every ID keeps at least one test.
- Collection fails if a parametrised table is empty (a vacuous test would otherwise pass as
  "skipped").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import network_guard

# The ``figure`` fixture and the figures' summary (imported by pytest, not here: a plugin
# module imported first could not have its asserts rewritten).
pytest_plugins = ("tests.support.figures",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "plan(*ids): the reliability plan's test IDs (T01-T40) this test carries, "
        'e.g. plan("T12", "T13")',
    )


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def network_guard_installed(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[network_guard.NetworkGuard]:
    """Refuse every non-loopback connect and lookup; fail the test if one was tried."""
    guard = network_guard.NetworkGuard(request.node.nodeid)
    guard.install(monkeypatch)
    yield guard
    guard.finish(pytest.fail)


# Proxy variables of the machine running the tests: environment proxies are on by default
# (issue 11), and loopback tests must reach their own servers directly.
_PROXY_VARIABLES = tuple(
    f(name)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "kneo_proxy")
    for f in (str.lower, str.upper)
)


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the machine's proxy variables; a test that wants one sets it itself."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


_EMPTY_TABLE = "got empty parameter set"


def empty_tables(items: list[pytest.Item]) -> list[str]:
    """Node IDs of the tests generated from an empty table."""
    return [
        item.nodeid
        for item in items
        if any(
            str(mark.kwargs.get("reason", "")).startswith(_EMPTY_TABLE)
            for mark in item.iter_markers()
        )
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    empty = empty_tables(items)
    if empty:
        raise pytest.UsageError(f"empty parametrised tables: {empty}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.support import figures

    totals = network_guard.TOTALS
    if totals["tests"]:
        figures._FIGURES.append(
            (
                "T40",
                f"network guard: {totals['violations']} violation(s) in {totals['tests']} "
                f"guarded tests ({totals['connects']} connects and {totals['lookups']} "
                f"lookups checked; {totals['expected violations']} provoked on purpose "
                "by the guard's own tests)",
            )
        )
