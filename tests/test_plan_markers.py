"""Every test ID of the reliability plan (T01-T40) stays linked to at least one test.

A test carries its plan IDs with the ``plan`` marker (registered in ``tests/conftest.py``):
``pytestmark = pytest.mark.plan("T12")`` for a whole module, or ``@pytest.mark.plan("T12")``
on a test when a module mixes IDs. The markers are read from the source with ``ast``, so
the check needs no second collection: a module-level ``pytestmark`` of a ``test_*.py``
module, or a decorator of a ``test_*`` function (or of a ``test_*`` method of a ``Test*``
class). A moved, renamed or deleted test that took an ID's last marker with it fails here,
and so does a marker naming an ID the plan does not have.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.plan("T40")

TESTS = Path(__file__).parent

# The plan's test IDs and titles.
PLAN: dict[str, str] = {
    "T01": "Retry-schedule properties (hypothesis fault schedules)",
    "T02": 'Exactly-once ledger model ("no duplicate runs")',
    "T03": "Retry classification golden table",
    "T04": "Backoff and jitter distribution",
    "T05": "Retry-After parsing and bounding",
    "T06": "Retry budget unit, stateful and threaded",
    "T07": "Idempotency key and request-id lifecycle",
    "T08": "409 disambiguation and replay marker",
    "T09": "Response decoder fuzz",
    "T10": "Exception hierarchy contract",
    "T11": "Truncated body",
    "T12": "Wrong Content-Length and response attribution",
    "T13": "Invalid JSON and non-JSON error bodies",
    "T14": "Oversized bodies and decompression bombs",
    "T15": "Slowloris drip vs the overall deadline",
    "T16": "Reset and early close around the send boundary",
    "T17": "HTTP protocol garbage corpus",
    "T18": "Stale keep-alive",
    "T19": "No hidden retries, no infinite timeouts below the SDK",
    "T20": "Cancel-point sweep with a pool-integrity oracle",
    "T21": "Cancellation semantics",
    "T22": "Cancelling long operations and closing the client",
    "T23": "Blocking-driver interruption",
    "T24": "1,000 concurrent calls",
    "T25": "Outage amplification (retry storm)",
    "T26": "Threaded blocking client",
    "T27": "Deadline property under virtual time",
    "T28": "Real-time deadlines on loopback",
    "T29": "Clock jumps and skew",
    "T30": "wait_for_completion contract",
    "T31": "Pagination iterator",
    "T32": "Secret-redaction sweep with a canary",
    "T33": "API key validation at construction",
    "T34": "Redirects",
    "T35": "CRLF and header injection",
    "T36": "Path-parameter encoding",
    "T37": "TLS verification on by default",
    "T38": "Plain-HTTP key guard",
    "T39": "Trusting server-controlled URLs and headers",
    "T40": "Quality gates for the suite itself",
}

# Plan IDs that no test carries yet. An ID leaves this set with its first test (the check
# below fails while it is listed but carried), so the set only ever shrinks.
WITHOUT_TEST: frozenset[str] = frozenset()


def plan_ids(node: ast.expr) -> list[str] | None:
    """The IDs of a ``pytest.mark.plan(...)`` call, or None if ``node`` is not one."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    mark = node.func
    if not (
        mark.attr == "plan"
        and isinstance(mark.value, ast.Attribute)
        and mark.value.attr == "mark"
        and isinstance(mark.value.value, ast.Name)
        and mark.value.value.id == "pytest"
    ):
        return None
    # Anything but string literals is kept as written: it is then no plan ID, and fails.
    ids = [
        arg.value
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        else ast.unparse(arg)
        for arg in node.args
    ]
    ids += [ast.unparse(keyword) for keyword in node.keywords]
    return ids or [ast.unparse(node)]


def marks_of(value: ast.expr) -> list[ast.expr]:
    """The marks of a ``pytestmark`` value: one mark or a list/tuple of them."""
    return list(value.elts) if isinstance(value, ast.List | ast.Tuple) else [value]


def collectable_tests(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The module's test functions and the test methods of its ``Test*`` classes."""
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found += [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node)
    return [f for f in found if f.name.startswith("test")]


def carriers() -> dict[str, set[str]]:
    """Plan ID -> the tests (``path::name``, or ``path`` for a module mark) that carry it."""
    carried: dict[str, set[str]] = defaultdict(set)
    for path in sorted(TESTS.rglob("test_*.py")):
        where = path.relative_to(TESTS.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "pytestmark"
                for target in node.targets
            ):
                for mark in marks_of(node.value):
                    for plan_id in plan_ids(mark) or []:
                        carried[plan_id].add(where)
        for test in collectable_tests(tree):
            for decorator in test.decorator_list:
                for plan_id in plan_ids(decorator) or []:
                    carried[plan_id].add(f"{where}::{test.name}")
    return carried


def test_the_plan_table_lists_t01_to_t40() -> None:
    assert list(PLAN) == [f"T{n:02d}" for n in range(1, 41)]
    assert set(PLAN) >= WITHOUT_TEST


def test_every_plan_marker_names_a_plan_id() -> None:
    unknown = {
        plan_id: sorted(where) for plan_id, where in carriers().items() if plan_id not in PLAN
    }
    assert unknown == {}, f"plan markers naming no plan ID: {unknown}"


def test_every_plan_id_is_carried_by_a_test() -> None:
    carried = carriers()
    lost = {plan_id: PLAN[plan_id] for plan_id in PLAN if plan_id not in carried}
    assert set(lost) == set(WITHOUT_TEST), (
        f"plan IDs with no test: {lost}; listed in WITHOUT_TEST: {sorted(WITHOUT_TEST)}"
    )


def test_the_marker_reader_sees_module_and_test_marks(tmp_path: Path) -> None:
    """The reader finds both forms, so a failure above is never the reader's blind spot."""
    source = (
        "import pytest\n"
        'pytestmark = [pytest.mark.plan("T01", "T02"), pytest.mark.timeout(5)]\n'
        '@pytest.mark.plan("T03")\n'
        "def test_a(): ...\n"
        "class TestB:\n"
        '    @pytest.mark.plan("T04")\n'
        "    async def test_b(self): ...\n"
        '@pytest.mark.plan("T05")\n'
        "def helper(): ...\n"
    )
    tree = ast.parse(source)
    module = [
        plan_id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for mark in marks_of(node.value)
        for plan_id in plan_ids(mark) or []
    ]
    tests = {
        test.name: [i for d in test.decorator_list for i in plan_ids(d) or []]
        for test in collectable_tests(tree)
    }
    assert module == ["T01", "T02"]
    assert tests == {"test_a": ["T03"], "test_b": ["T04"]}
