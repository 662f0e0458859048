"""kneo_proto: the Sans-I/O core of kneo-client.

Pure state machines that build /v1 requests, turn responses into typed results or
``KneoError``s, decide retries and delays, walk pages and poll runs. Nothing here opens a
socket, sleeps, or reads the clock, the environment or a file: drivers do the I/O and hand
time in through a ``Clock``. Embed it in any HTTP stack::

    call = Call(endpoints.get_run("run_1"), config, clock=Clock(time.monotonic, time.time))
    while True:
        match call.next_action():
            case Send(request=req, timeout=t):
                ...  # send req; call.receive_response(...) or call.receive_failure(...)
            case Sleep(seconds=s):
                time.sleep(s)
            case Finished(result=run):
                break
            case Failed(error=error):
                raise error
"""

from kneo_proto import endpoints, models
from kneo_proto._actions import Action, Failed, FailureKind, Finished, Phase, Send, Sleep
from kneo_proto._auth import ApiKeyAuth, AuthScheme, normalize_api_key
from kneo_proto._budget import RetryBudget, TokenBucket
from kneo_proto._call import Call, CallState
from kneo_proto._config import (
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    USER_AGENT,
    CallOptions,
    ClientConfig,
    Clock,
    check_keepalive_expiry,
    is_loopback_host,
)
from kneo_proto._errors import (
    ERROR_CODE_IDEMPOTENCY_IN_PROGRESS,
    ERROR_CODE_IDEMPOTENCY_MISMATCH,
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
    KneoProxyError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoStateError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    KneoUsageError,
    KneoWaitTimeoutError,
    ProfileError,
    from_response,
)
from kneo_proto._http import Request, Response
from kneo_proto._idempotency import (
    IDEMPOTENCY_KEY_HEADER,
    MAX_KEY_LENGTH,
    new_idempotency_key,
    validate_idempotency_key,
)
from kneo_proto._operation import ENDPOINTS, Endpoint, Operation, Parts
from kneo_proto._paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageWalk, PaginatedResult, page_of
from kneo_proto._polling import (
    DEFAULT_TERMINAL_STATUSES,
    FetchStatus,
    RunDone,
    RunPoll,
    TerminalStatuses,
)
from kneo_proto._profiles import (
    DEFAULT_PROFILE_NAME,
    ENV_API_KEY,
    ENV_AUTH_SCHEME,
    ENV_CA_BUNDLE,
    ENV_PROFILE,
    ENV_PROXY,
    ENV_STRICT_RESPONSES,
    ENV_TIMEOUT,
    ENV_TRUST_ENV,
    ENV_URL,
    Profile,
    resolve_profile,
)
from kneo_proto._proxy import PROXY_SCHEMES, Proxy, ProxyPlan, parse_proxy_url, plan_proxy
from kneo_proto._redact import REDACTED, SENSITIVE_HEADER_TOKENS, redact_headers, redact_url
from kneo_proto._request_ids import (
    ATTEMPT_HEADER,
    REQUEST_ID_HEADER,
    generate_request_id,
    validate_request_id,
)
from kneo_proto._retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    parse_retry_after,
    retry_is_safe,
)
from kneo_proto._version import __version__

__all__ = [
    "ATTEMPT_HEADER",
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_PROFILE_NAME",
    "DEFAULT_TERMINAL_STATUSES",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENDPOINTS",
    "ENV_API_KEY",
    "ENV_AUTH_SCHEME",
    "ENV_CA_BUNDLE",
    "ENV_STRICT_RESPONSES",
    "ENV_PROFILE",
    "ENV_PROXY",
    "ENV_TIMEOUT",
    "ENV_TRUST_ENV",
    "ENV_URL",
    "ERROR_CODE_IDEMPOTENCY_IN_PROGRESS",
    "ERROR_CODE_IDEMPOTENCY_MISMATCH",
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENT_METHODS",
    "MAX_KEY_LENGTH",
    "MAX_PAGE_SIZE",
    "REDACTED",
    "REQUEST_ID_HEADER",
    "RETRYABLE_STATUS_CODES",
    "SENSITIVE_HEADER_TOKENS",
    "USER_AGENT",
    "Action",
    "ApiKeyAuth",
    "AuthScheme",
    "Call",
    "CallOptions",
    "CallState",
    "ClientConfig",
    "Clock",
    "Endpoint",
    "Failed",
    "FailureKind",
    "FetchStatus",
    "Finished",
    "KneoAuthError",
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
    "KneoProxyError",
    "KneoRateLimited",
    "KneoResponseTooLargeError",
    "KneoServerError",
    "KneoServiceUnavailableError",
    "KneoStateError",
    "KneoTLSError",
    "KneoTimeoutError",
    "KneoUnexpectedRedirectError",
    "KneoUsageError",
    "KneoWaitTimeoutError",
    "Operation",
    "PageWalk",
    "PROXY_SCHEMES",
    "PaginatedResult",
    "Parts",
    "Phase",
    "Profile",
    "ProfileError",
    "Proxy",
    "ProxyPlan",
    "Request",
    "Response",
    "RetryBudget",
    "RetryPolicy",
    "RunDone",
    "RunPoll",
    "Send",
    "Sleep",
    "TerminalStatuses",
    "TokenBucket",
    "__version__",
    "endpoints",
    "from_response",
    "generate_request_id",
    "check_keepalive_expiry",
    "is_loopback_host",
    "models",
    "new_idempotency_key",
    "normalize_api_key",
    "page_of",
    "parse_proxy_url",
    "parse_retry_after",
    "plan_proxy",
    "redact_headers",
    "redact_url",
    "resolve_profile",
    "retry_is_safe",
    "validate_idempotency_key",
    "validate_request_id",
]
