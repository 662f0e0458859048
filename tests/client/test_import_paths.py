"""Every import path and public name the contract documents is importable."""

from __future__ import annotations

import importlib

import pytest

DOCUMENTED: dict[str, tuple[str, ...]] = {
    "kneo_client": ("KneoClient", "Profile", "RetryPolicy", "SyncKneoClient"),
    "kneo_client.core.transport": ("Transport", "SyncTransport"),
    "kneo_client.core.profiles": (
        "Profile",
        "ProfileError",
        "load_profile",
        "default_config_path",
        "DEFAULT_PROFILE_NAME",
        "DEFAULT_TIMEOUT_SECONDS",
        "ENV_PROFILE",
        "ENV_URL",
        "ENV_API_KEY",
        "ENV_AUTH_SCHEME",
        "ENV_TIMEOUT",
    ),
    "kneo_client.core.retries": ("RetryPolicy", "RETRYABLE_STATUS_CODES"),
    "kneo_client.core.errors": (
        "KneoError",
        "KneoAuthError",
        "KneoPermissionError",
        "KneoNotFoundError",
        "KneoConflictError",
        "KneoIdempotencyMismatchError",
        "KneoRateLimited",
        "KneoServerError",
        "KneoNetworkError",
        "from_response",
    ),
    "kneo_client.core.auth": ("ApiKeyAuth", "AuthScheme"),
    "kneo_client.core.pagination": (
        "PaginatedResult",
        "iterate_all",
        "DEFAULT_PAGE_SIZE",
        "MAX_PAGE_SIZE",
    ),
    "kneo_client.core.idempotency": (
        "IDEMPOTENCY_KEY_HEADER",
        "MAX_KEY_LENGTH",
        "new_idempotency_key",
        "validate_idempotency_key",
    ),
    "kneo_client.core.request_ids": ("REQUEST_ID_HEADER", "generate_request_id"),
    "kneo_client.core.logging": ("REDACTED", "get_logger", "redact_headers"),
    "kneo_client.platform": (
        "PlatformClient",
        "HealthClient",
        "RunsClient",
        "HumanTasksClient",
        "AuditClient",
        "CredentialsClient",
        "PoliciesClient",
    ),
    "kneo_client.agent": ("AgentClient", "SpecsClient"),
}


@pytest.mark.parametrize("module", sorted(DOCUMENTED))
def test_documented_names_import(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in DOCUMENTED[module] if not hasattr(imported, name)]
    assert missing == []


def test_documented_constants_have_the_contract_values() -> None:
    from kneo_client.core import idempotency, logging, profiles, request_ids, retries

    assert frozenset({429, 502, 503, 504}) == retries.RETRYABLE_STATUS_CODES
    assert idempotency.IDEMPOTENCY_KEY_HEADER == "Idempotency-Key"
    assert idempotency.MAX_KEY_LENGTH == 256
    assert request_ids.REQUEST_ID_HEADER == "X-Request-ID"
    assert logging.REDACTED == "<redacted>"
    assert (profiles.ENV_URL, profiles.ENV_API_KEY, profiles.ENV_PROFILE) == (
        "KNEO_URL",
        "KNEO_API_KEY",
        "KNEO_PROFILE",
    )
    assert profiles.DEFAULT_TIMEOUT_SECONDS == 30.0
    assert profiles.DEFAULT_PROFILE_NAME == "default"


def test_get_logger_namespaces_bare_names() -> None:
    from kneo_client.core.logging import get_logger

    assert get_logger("transport").name == "kneo_client.transport"
    assert get_logger("kneo_client.foo").name == "kneo_client.foo"
    assert get_logger().name == "kneo_client"


def test_lazy_top_level_names_agree_with_the_type_checking_imports() -> None:
    """``kneo_client`` loads names on first use; its map, imports and ``__all__`` must agree."""
    import ast
    from pathlib import Path

    import kneo_client

    source = Path(kneo_client.__file__).read_text(encoding="utf-8")
    typed: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module != "typing":
                    assert statement.module is not None
                    typed.update((alias.name, statement.module) for alias in statement.names)
    exports = kneo_client._EXPORTS
    assert typed == exports
    assert sorted(kneo_client.__all__) == sorted(exports)
    for name, module in exports.items():
        assert getattr(kneo_client, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = kneo_client.not_a_name


def modules_loaded_after(statements: str, watched: list[str]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has imported after running ``statements``."""
    import subprocess
    import sys

    script = (
        f"import sys\n{statements}\n"
        f"print(','.join(name for name in {watched!r} if name in sys.modules))\n"
    )
    printed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    return printed.split(",") if printed else []


def test_importing_kneo_client_loads_no_driver_core_or_async_library() -> None:
    """``import kneo_client`` stays cheap: the rest loads when a name is first used."""
    heavy = ["kneo_proto", "kneo_drivers", "msgspec", "anyio", "trio", "httpcore2", "h11", "httpx"]
    assert modules_loaded_after("import kneo_client", [*heavy, "typing", "asyncio", "ssl"]) == []


def test_a_blocking_client_never_imports_trio_or_asyncio() -> None:
    """(httpcore2 imports anyio, but anyio loads an event loop library only when one runs.)"""
    statements = (
        "from kneo_client import Profile, SyncKneoClient\n"
        "client = SyncKneoClient(Profile(name='p', url='http://127.0.0.1:9', api_key='k_1234'))\n"
        "client.close()"
    )
    assert modules_loaded_after(statements, ["trio", "asyncio"]) == []


def test_importing_the_client_classes_leaves_drivers_and_io_libraries_unloaded() -> None:
    """Drivers, httpcore2, the event loop libraries, TLS and TOML load when first needed."""
    heavy = ["kneo_drivers", "anyio", "trio", "asyncio", "httpcore2", "h11", "ssl", "httpx"]
    statements = "from kneo_client import KneoClient, Profile, SyncKneoClient"
    assert modules_loaded_after(statements, [*heavy, "tomllib", "logging", "pathlib"]) == []


def test_no_transport_imports_httpx_unless_given_an_httpx_client() -> None:
    """httpx is an optional extra: only an httpx client passed as ``http_client`` loads it,
    and telling what was passed (a pool, or a wrong type) never imports it."""
    statements = (
        "import httpcore2\n"
        "from kneo_client import KneoClient, Profile, SyncKneoClient\n"
        "from kneo_client.core.transport import SyncTransport, Transport\n"
        "profile = Profile(name='p', url='http://127.0.0.1:9', api_key='k_1234')\n"
        "Transport(profile), KneoClient(profile)\n"
        "SyncTransport(profile).close(), SyncKneoClient(profile).close()\n"
        "SyncTransport(profile, http_client=httpcore2.ConnectionPool()).close()\n"
        "try:\n"
        "    Transport(profile, http_client=object())\n"
        "except ValueError:\n"
        "    pass"
    )
    assert modules_loaded_after(statements, ["httpx", "kneo_drivers.httpx"]) == []
