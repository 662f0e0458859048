"""The error hierarchy, and the one table that maps an HTTP response to its error class.

Invariants: every failure kneo-client reports is a ``KneoError``. Each carries the HTTP status
(None for transport failures), the parsed body, the request ID and idempotency key of the
call, how many attempts were made and the last ``Retry-After``. No message built here
contains a request header value other than the request ID, so the API key cannot reach an
error's text. Errors pickle, because
task queues move them between processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec

from kneo_proto._http import Response, returned_request_id
from kneo_proto._redact import REDACTED

__all__ = [
    "ERROR_CODE_IDEMPOTENCY_IN_PROGRESS",
    "ERROR_CODE_IDEMPOTENCY_MISMATCH",
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
    "ProfileError",
    "error_class_for",
    "error_code_of",
    "from_response",
    "parse_error_body",
]

# The platform's machine-readable codes (spec: ErrorDetail.code) that change what a 409 means.
ERROR_CODE_IDEMPOTENCY_MISMATCH = "idempotency_key_mismatch"
ERROR_CODE_IDEMPOTENCY_IN_PROGRESS = "idempotency_key_in_progress"

# Bodies that are not JSON are kept as text up to this many characters.
BODY_TEXT_LIMIT = 1024
_MESSAGE_LIMIT = 200


class KneoError(Exception):
    """Base of every error kneo-client raises; catch it to handle any failure.

    Attributes:
        status: The HTTP status, or None when no response was received.
        body: The response body: parsed JSON when it parses, else text (first 1 KiB), or None.
        request_id: The ``X-Request-ID`` the platform returned, when present, else the one
            kneo-client sent (a gateway in between may have replaced or set it).
        sent_request_id: The ``X-Request-ID`` kneo-client sent, when a request was built.
        idempotency_key: The ``Idempotency-Key`` sent with the failing request, when set.
        code: The platform's machine-readable error code (``body["error"]["code"]``), else
            None.
        details: The platform's code-specific context (``body["error"]["details"]``, e.g.
            the failing field), else None.
        attempts: How many attempts the call made before it failed (0 when none was sent).
        retry_after: Seconds from the last ``Retry-After`` header, when one was valid.
        elapsed: Seconds from the call's start to the failure, when known.
        method: The HTTP method of the failing call.
        path: The request path of the failing call (without the query string).
        retry_budget_exhausted: True when a retry was denied by the client's retry budget.
    """

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        code: str | None = None,
        attempts: int = 0,
        retry_after: float | None = None,
        elapsed: float | None = None,
        method: str | None = None,
        path: str | None = None,
        retry_budget_exhausted: bool = False,
        sent_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.request_id = request_id
        self.sent_request_id = sent_request_id
        self.idempotency_key = idempotency_key
        self._code = code
        self.attempts = attempts
        self.retry_after = retry_after
        self.elapsed = elapsed
        self.method = method
        self.path = path
        self.retry_budget_exhausted = retry_budget_exhausted

    @property
    def code(self) -> str | None:
        """The platform's error code (see ``kneo_client.models.KNOWN_ERROR_CODES``), or None.

        The ``code`` given when the error was built, else ``body["error"]["code"]`` (or a
        top-level ``code``) when the body has one as a string. Never raises, whatever the
        body holds.
        """
        return self._code if self._code is not None else error_code_of(self.body)

    @code.setter
    def code(self, value: str | None) -> None:
        self._code = value

    @property
    def details(self) -> dict[str, Any] | None:
        """The platform's code-specific context (``body["error"]["details"]``), or None.

        For a 422 ``validation_error`` it names what was refused, for example the failing
        field. None when the body has no such object (not JSON, another shape, or no
        details); never raises.
        """
        detail = self.body.get("error") if isinstance(self.body, dict) else None
        found = detail.get("details") if isinstance(detail, dict) else None
        return found if isinstance(found, dict) else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        sent = ""
        if self.sent_request_id is not None and self.sent_request_id != self.request_id:
            sent = f", sent_request_id={self.sent_request_id!r}"
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r}{sent}, "
            f"idempotency_key={self.idempotency_key!r}, attempts={self.attempts})"
        )


class KneoUsageError(KneoError, ValueError):
    """Raised before anything is sent when a call is misused; retrying cannot help."""


class KneoConfigurationError(KneoUsageError):
    """Raised when a client, profile or API key is not usable; fix the configuration."""


class ProfileError(KneoConfigurationError):
    """Raised when a profile cannot be resolved (missing url or key, bad TOML, bad value).

    Attributes:
        setting: The profile setting whose value is at fault (``"timeout"``, ...), when one
            is; the message then names where that value came from.
    """

    def __init__(self, message: str = "", *, setting: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.setting = setting


class KneoInsecureTransportError(KneoConfigurationError):
    """Raised when the key would go over plain http to a non-loopback host; use https."""


class KneoStateError(KneoError, RuntimeError):
    """Raised when a driver calls a state machine out of order: a bug in the driver."""


class KneoClientClosedError(KneoError):
    """Raised when a call is made on, or cut short by, a closed client; open a new one."""


class KneoAuthError(KneoError):
    """401: the API key is missing or invalid; retrying cannot help."""


class KneoPermissionError(KneoError):
    """403: the key is valid but lacks the scope; retrying cannot help."""


class KneoNotFoundError(KneoError):
    """404: the resource does not exist; retrying cannot help."""


class KneoInvalidRequestError(KneoError):
    """400 or 422: the platform rejected the request's content; fix the request."""


class KneoConflictError(KneoError):
    """409: the request conflicts with the resource's current state; not retried."""


class KneoIdempotencyMismatchError(KneoConflictError):
    """409 (or 422) on a keyed request: the key was used before with another payload.

    Almost always a caller bug; retrying with the same key cannot help.
    """


class KneoIdempotencyInProgressError(KneoConflictError):
    """409: the original request with this key is still running and retries ran out.

    Retrying later with the same key returns the original result once it is done.
    """


class KneoRateLimited(KneoError):
    """429: too many requests; ``retry_after`` says when to try again."""


class KneoServerError(KneoError):
    """5xx: the platform failed; retried automatically on 502, 503 and 504."""


class KneoServiceUnavailableError(KneoServerError):
    """503: the platform is temporarily unavailable; ``retry_after`` may say for how long."""


class KneoUnexpectedRedirectError(KneoError):
    """3xx: the platform redirected; kneo-client never follows redirects (check the URL).

    Attributes:
        location: The ``Location`` header's value, when present.
    """

    def __init__(self, message: str = "", *, location: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.location = location


class KneoDecodeError(KneoError):
    """A 2xx body could not be decoded into its model (not JSON, or an essential field
    missing); with ``strict_responses``, also a body that does not match ``spec/``. Not
    retried: the platform did act. After a POST, repeat the call with the same
    ``idempotency_key`` to receive the platform's stored response; a fresh key acts twice.

    Attributes:
        raw_body: The response body exactly as received, or None when none was.
    """

    def __init__(self, message: str = "", *, raw_body: bytes | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.raw_body = raw_body


class KneoResponseTooLargeError(KneoError):
    """The response body exceeded the size cap; raise the cap or narrow the request."""


class KneoNetworkError(KneoError):
    """The request failed in transport (connect, send, receive); retried where safe.

    Attributes:
        kind: The failure kind (for example ``"connect"`` or ``"network"``).
    """

    def __init__(self, message: str = "", *, kind: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.kind = kind


class KneoTimeoutError(KneoNetworkError, TimeoutError):
    """A timeout or the call's overall deadline expired; retried where safe."""


class KneoProtocolError(KneoNetworkError):
    """The server sent bytes that are not valid HTTP; retried where safe."""


class KneoTLSError(KneoNetworkError):
    """The TLS handshake failed (for example an untrusted certificate); not retried."""


class KneoProxyError(KneoNetworkError):
    """The proxy failed the call: unreachable, it refused the tunnel, or it wants valid
    credentials (407). Nothing reached the platform. Retried only when the proxy was
    unreachable or answered 502, 503 or 504; never on a 407 (check the proxy URL's
    credentials).

    Attributes:
        proxy: The proxy as ``scheme://host:port`` (never its credentials), when known.
        proxy_source: Where the proxy setting came from (e.g. ``"HTTPS_PROXY"``), when known.
        proxy_status: The status the proxy answered (407, 502, ...), when it answered one.
    """

    def __init__(
        self,
        message: str = "",
        *,
        proxy: str | None = None,
        proxy_source: str | None = None,
        proxy_status: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.proxy = proxy
        self.proxy_source = proxy_source
        self.proxy_status = proxy_status


class KneoPaginationError(KneoError):
    """The server's pages are inconsistent (an empty page while more were promised)."""


class KneoWaitTimeoutError(KneoError, TimeoutError):
    """``wait_for_completion`` ran out of time before the run reached a terminal status.

    Attributes:
        run_id: The run waited for.
        last_status: The status seen by the last poll, or None if no poll succeeded.
        polls: How many polls were made.
    """

    def __init__(
        self,
        message: str = "",
        *,
        run_id: str | None = None,
        last_status: str | None = None,
        polls: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.run_id = run_id
        self.last_status = last_status
        self.polls = polls


_CLASS_BY_STATUS: Mapping[int, type[KneoError]] = {
    400: KneoInvalidRequestError,
    401: KneoAuthError,
    403: KneoPermissionError,
    404: KneoNotFoundError,
    # Only a proxy answers 407 (RFC 9110 15.5.8); the call names it (kneo_proto/_proxy.py).
    407: KneoProxyError,
    409: KneoConflictError,
    422: KneoInvalidRequestError,
    429: KneoRateLimited,
    503: KneoServiceUnavailableError,
}
_CLASS_BY_RANGE: tuple[tuple[range, type[KneoError]], ...] = (
    (range(300, 400), KneoUnexpectedRedirectError),
    (range(500, 600), KneoServerError),
)
_CLASS_BY_CODE: Mapping[str, type[KneoError]] = {
    ERROR_CODE_IDEMPOTENCY_MISMATCH: KneoIdempotencyMismatchError,
    ERROR_CODE_IDEMPOTENCY_IN_PROGRESS: KneoIdempotencyInProgressError,
}


def error_class_for(status: int, code: str | None, *, keyed: bool) -> type[KneoError]:
    """Return the error class for a non-2xx ``status``.

    A 409 whose ``code`` names an idempotency problem, or a 422 whose code says the key was
    reused with another payload, gets that class (a 422 "in progress" stays a plain 422); any
    other 409
    on a keyed request is an idempotency mismatch and, without a key, a plain conflict (the
    contract's table). Other statuses go by the status table, then by range, else KneoError.
    """
    by_code = _CLASS_BY_CODE.get(code or "")
    if by_code is not None and (
        status == 409 or (status == 422 and by_code is KneoIdempotencyMismatchError)
    ):
        return by_code
    if status == 409 and keyed:
        return KneoIdempotencyMismatchError
    found = _CLASS_BY_STATUS.get(status)
    if found is not None:
        return found
    for statuses, cls in _CLASS_BY_RANGE:
        if status in statuses:
            return cls
    return KneoError


def parse_error_body(body: bytes) -> Any:
    """Return ``body`` as parsed JSON, else as text (first 1 KiB), or None when empty."""
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return body[:BODY_TEXT_LIMIT].decode("utf-8", errors="replace")


def error_code_of(parsed_body: Any) -> str | None:
    """Return the platform's error code from a parsed error body, or None."""
    if not isinstance(parsed_body, dict):
        return None
    detail = parsed_body.get("error")
    code = detail.get("code") if isinstance(detail, dict) else parsed_body.get("code")
    return code if isinstance(code, str) else None


def _server_message(parsed_body: Any, secret: str | None) -> str:
    found: object = parsed_body
    if isinstance(parsed_body, dict):
        detail = parsed_body.get("error")
        found = detail.get("message") if isinstance(detail, dict) else parsed_body.get("message")
    if not isinstance(found, str):
        return ""
    return _clipped(found, secret)


def _clipped(text: str, secret: str | None) -> str:
    """Server text fit for a message: the key masked, then cut to ``_MESSAGE_LIMIT``."""
    # Mask before cutting, so a key straddling the cut cannot survive in part.
    if secret:
        text = text.replace(secret, REDACTED)
    return text[:_MESSAGE_LIMIT].strip()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def from_response(
    response: Response,
    *,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    attempts: int = 1,
    retry_after: float | None = None,
    secret: str | None = None,
) -> KneoError:
    """Map a non-2xx ``response`` to the matching ``KneoError`` subclass.

    Args:
        response: The response received.
        idempotency_key: The key sent with the request, if any.
        request_id: The request ID sent; the ``X-Request-ID`` the platform returned takes
            precedence (``sent_request_id`` keeps the one sent).
        method: The request's method, for the message.
        path: The request's path, for the message.
        attempts: How many attempts the call made.
        retry_after: The parsed ``Retry-After`` in seconds, when valid.
        secret: The API key; masked wherever the server's own message quotes it (``body``
            keeps the server's data as sent).

    Returns:
        The error, ready to raise.
    """
    body = parse_error_body(response.body)
    code = error_code_of(body)
    cls = error_class_for(response.status, code, keyed=idempotency_key is not None)
    returned = returned_request_id(response, request_id)
    where = f"{method} {path} " if method and path else ""
    said = _server_message(body, secret)
    message = f"{where}-> {response.status} {_reason(response.status)}"
    if code:
        # The code is server data too: a 100 KB code must not make a 100 KB message (T09).
        message += f" [{_clipped(code, secret)}]"
    if said:
        message += f": {said}"
    if request_id and returned != request_id:
        message += f" (request_id={returned}, sent as {request_id})"
    else:
        message += f" (request_id={returned})"
    extra: dict[str, Any] = {}
    if cls is KneoUnexpectedRedirectError:
        extra["location"] = response.header("location")
    return cls(
        message,
        status=response.status,
        body=body,
        request_id=returned,
        sent_request_id=request_id,
        idempotency_key=idempotency_key,
        code=code,
        attempts=attempts,
        retry_after=retry_after,
        method=method,
        path=path,
        **extra,
    )
