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


def test_building_an_async_client_does_not_import_trio() -> None:
    statement = (
        "from kneo_client import KneoClient, Profile; "
        "KneoClient(Profile(name='t', url='https://kneo.test', api_key='k'))"
    )
    loaded = modules_loaded_by(statement)
    assert "httpcore2" in loaded
    assert "trio" not in loaded


def test_async_client_still_runs_on_trio_imported_after_it() -> None:
    """httpcore2 sees trio only when a request runs under it; that must still work."""
    code = (
        "import socket, sys\n"
        "from kneo_client import KneoClient, Profile, KneoNetworkError, RetryPolicy\n"
        "probe = socket.socket(); probe.bind(('127.0.0.1', 0)); port = probe.getsockname()[1]\n"
        "probe.close()\n"
        "client = KneoClient(Profile(name='t', url=f'http://127.0.0.1:{port}', api_key='k'),\n"
        "                    retry_policy=RetryPolicy(max_attempts=1))\n"
        "assert 'trio' not in sys.modules\n"
        "import trio\n"
        "async def main():\n"
        "    try:\n"
        "        await client.platform.health.livez()\n"
        "    except KneoNetworkError as exc:\n"
        "        print('refused', exc.kind)\n"
        "    await client.aclose()\n"
        "trio.run(main)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused connect"
