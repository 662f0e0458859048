"""What the pinned OpenAPI file under ``spec/`` declares, for the tests that count it.

A test that checks "every operation" compares with ``spec_operation_count()`` instead of a
literal, so an endpoint added to the spec (and declared in ``kneo_proto``) needs no test edit.
The operations are read as ``tests/proto/test_endpoints_match_spec.py`` reads them: each HTTP
method of each path item is one operation.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

__all__ = ["SPEC_PATH", "spec_operation_count", "spec_operation_ids"]

SPEC_PATH = Path(__file__).parents[2] / "spec" / "kneo-v1.openapi.yaml"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@functools.cache
def spec_operation_ids() -> tuple[str, ...]:
    """The ``operationId`` of every operation of the pinned spec, in the file's order."""
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return tuple(
        item[method]["operationId"]
        for item in spec["paths"].values()
        for method in _METHODS
        if method in item
    )


def spec_operation_count() -> int:
    """How many operations the pinned spec declares."""
    return len(spec_operation_ids())
