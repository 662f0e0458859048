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
