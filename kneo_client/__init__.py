"""kneo-client: the typed Python SDK for the Kneo Agent Platform /v1 HTTP API.

``KneoClient`` is the async client (asyncio or trio), ``SyncKneoClient`` the blocking one;
both expose ``.platform`` and ``.agent``::

    async with KneoClient.from_profile() as client:
        run = await client.platform.runs.create({"spec_id": "my-spec"})
        done = await client.platform.runs.wait_for_completion(run.run_id, timeout=120)

Names are imported on first use, so ``import kneo_client`` costs almost nothing until a
client or an error class is needed (``docs/dev/adrs/0009-lazy-imports-and-lean-attempts.md``).
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing would double the cost of ``import kneo_client``.
# Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kneo_client import models as models
    from kneo_client._bind import (
        ApiResponse as ApiResponse,
    )
    from kneo_client._client import (
        KneoClient as KneoClient,
        SyncKneoClient as SyncKneoClient,
    )
    from kneo_client.core.logging import (
        get_logger as get_logger,
    )
    from kneo_client.core.profiles import (
        default_config_path as default_config_path,
        load_profile as load_profile,
    )
    from kneo_client.core.transport import (
        SyncTransport as SyncTransport,
        Transport as Transport,
        TransportResponse as TransportResponse,
    )
    from kneo_proto import (
        DEFAULT_TERMINAL_STATUSES as DEFAULT_TERMINAL_STATUSES,
        ApiKeyAuth as ApiKeyAuth,
        AuthScheme as AuthScheme,
        KneoAuthError as KneoAuthError,
        KneoClientClosedError as KneoClientClosedError,
        KneoConfigurationError as KneoConfigurationError,
        KneoConflictError as KneoConflictError,
        KneoDecodeError as KneoDecodeError,
        KneoError as KneoError,
        KneoIdempotencyInProgressError as KneoIdempotencyInProgressError,
        KneoIdempotencyMismatchError as KneoIdempotencyMismatchError,
        KneoInsecureTransportError as KneoInsecureTransportError,
        KneoInvalidRequestError as KneoInvalidRequestError,
        KneoNetworkError as KneoNetworkError,
        KneoNotFoundError as KneoNotFoundError,
        KneoPaginationError as KneoPaginationError,
        KneoPermissionError as KneoPermissionError,
        KneoProtocolError as KneoProtocolError,
        KneoProxyError as KneoProxyError,
        KneoRateLimited as KneoRateLimited,
        KneoResponseTooLargeError as KneoResponseTooLargeError,
        KneoServerError as KneoServerError,
        KneoServiceUnavailableError as KneoServiceUnavailableError,
        KneoTimeoutError as KneoTimeoutError,
        KneoTLSError as KneoTLSError,
        KneoUnexpectedRedirectError as KneoUnexpectedRedirectError,
        KneoUsageError as KneoUsageError,
        KneoWaitTimeoutError as KneoWaitTimeoutError,
        PaginatedResult as PaginatedResult,
        Profile as Profile,
        ProfileError as ProfileError,
        RetryBudget as RetryBudget,
        RetryPolicy as RetryPolicy,
        __version__ as __version__,
    )

# Where each public name lives; the TYPE_CHECKING imports above must name the same ones
# (tests/client/test_import_paths.py checks that both lists and ``__all__`` agree).
_EXPORTS: dict[str, str] = {
    "ApiKeyAuth": "kneo_proto",
    "ApiResponse": "kneo_client._bind",
    "AuthScheme": "kneo_proto",
    "DEFAULT_TERMINAL_STATUSES": "kneo_proto",
    "KneoAuthError": "kneo_proto",
    "KneoClient": "kneo_client._client",
    "KneoClientClosedError": "kneo_proto",
    "KneoConfigurationError": "kneo_proto",
    "KneoConflictError": "kneo_proto",
    "KneoDecodeError": "kneo_proto",
    "KneoError": "kneo_proto",
    "KneoIdempotencyInProgressError": "kneo_proto",
    "KneoIdempotencyMismatchError": "kneo_proto",
    "KneoInsecureTransportError": "kneo_proto",
    "KneoInvalidRequestError": "kneo_proto",
    "KneoNetworkError": "kneo_proto",
    "KneoNotFoundError": "kneo_proto",
    "KneoPaginationError": "kneo_proto",
    "KneoPermissionError": "kneo_proto",
    "KneoProtocolError": "kneo_proto",
    "KneoProxyError": "kneo_proto",
    "KneoRateLimited": "kneo_proto",
    "KneoResponseTooLargeError": "kneo_proto",
    "KneoServerError": "kneo_proto",
    "KneoServiceUnavailableError": "kneo_proto",
    "KneoTLSError": "kneo_proto",
    "KneoTimeoutError": "kneo_proto",
    "KneoUnexpectedRedirectError": "kneo_proto",
    "KneoUsageError": "kneo_proto",
    "KneoWaitTimeoutError": "kneo_proto",
    "PaginatedResult": "kneo_proto",
    "Profile": "kneo_proto",
    "ProfileError": "kneo_proto",
    "RetryBudget": "kneo_proto",
    "RetryPolicy": "kneo_proto",
    "SyncKneoClient": "kneo_client._client",
    "SyncTransport": "kneo_client.core.transport",
    "Transport": "kneo_client.core.transport",
    "TransportResponse": "kneo_client.core.transport",
    "__version__": "kneo_proto",
    "default_config_path": "kneo_client.core.profiles",
    "get_logger": "kneo_client.core.logging",
    "load_profile": "kneo_client.core.profiles",
    "models": "kneo_client",  # the submodule kneo_client.models
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kneo_client' has no attribute {name!r}")
    if module == __name__:
        # A submodule: importing it binds it here, so both import forms give one module.
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
