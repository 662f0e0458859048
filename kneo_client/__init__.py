"""kneo-client: the typed Python SDK for the Kneo Agent Platform /v1 HTTP API.

``KneoClient`` is the async client (asyncio or trio), ``SyncKneoClient`` the blocking one;
both expose ``.platform`` and ``.agent``::

    async with KneoClient.from_profile() as client:
        run = await client.platform.runs.create({"spec_id": "my-spec"})
        done = await client.platform.runs.wait_for_completion(run.run_id, timeout=120)
"""

from kneo_client._bind import ApiResponse
from kneo_client._client import KneoClient, SyncKneoClient
from kneo_client.core.logging import get_logger
from kneo_client.core.profiles import default_config_path, load_profile
from kneo_client.core.transport import SyncTransport, Transport, TransportResponse
from kneo_proto import (
    DEFAULT_TERMINAL_STATUSES,
    ApiKeyAuth,
    AuthScheme,
    KneoAuthError,
    KneoClientClosedError,
    KneoConfigurationError,
    KneoConflictError,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyInProgressError,
    KneoIdempotencyMismatchError,
    KneoInsecureTransportError,
    KneoInvalidRequestError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoPaginationError,
    KneoPermissionError,
    KneoProtocolError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    KneoUsageError,
    KneoWaitTimeoutError,
    PaginatedResult,
    Profile,
    ProfileError,
    RetryBudget,
    RetryPolicy,
    __version__,
    models,
)

__all__ = [
    "DEFAULT_TERMINAL_STATUSES",
    "ApiKeyAuth",
    "ApiResponse",
    "AuthScheme",
    "KneoAuthError",
    "KneoClient",
    "KneoClientClosedError",
    "KneoConfigurationError",
    "KneoConflictError",
    "KneoDecodeError",
    "KneoError",
    "KneoIdempotencyInProgressError",
    "KneoIdempotencyMismatchError",
    "KneoInsecureTransportError",
    "KneoInvalidRequestError",
    "KneoNetworkError",
    "KneoNotFoundError",
    "KneoPaginationError",
    "KneoPermissionError",
    "KneoProtocolError",
    "KneoRateLimited",
    "KneoResponseTooLargeError",
    "KneoServerError",
    "KneoServiceUnavailableError",
    "KneoTLSError",
    "KneoTimeoutError",
    "KneoUnexpectedRedirectError",
    "KneoUsageError",
    "KneoWaitTimeoutError",
    "PaginatedResult",
    "Profile",
    "ProfileError",
    "RetryBudget",
    "RetryPolicy",
    "SyncKneoClient",
    "SyncTransport",
    "Transport",
    "TransportResponse",
    "__version__",
    "default_config_path",
    "get_logger",
    "load_profile",
    "models",
]
