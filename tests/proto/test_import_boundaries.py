"""kneo_proto stays Sans-I/O: importing it loads no transport, event loop or threading
module, and importing kneo_client loads no driver until a client is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN_IN_CORE = (
    "httpcore2",
    "httpcore",
    "h11",
    "anyio",
    "trio",
    "asyncio",
    "threading",
    "socket",
    "ssl",
    "platformdirs",
)


def modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", FORBIDDEN_IN_CORE)
def test_kneo_proto_imports_no_io_module(module: str) -> None:
    assert module not in modules_loaded_by("import kneo_proto")


@pytest.mark.parametrize("module", ["httpcore2", "h11", "anyio", "trio", "platformdirs"])
def test_kneo_client_import_loads_no_driver_dependency(module: str) -> None:
    assert module not in modules_loaded_by("import kneo_client")
