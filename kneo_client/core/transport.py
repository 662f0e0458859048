"""``Transport`` and ``SyncTransport``: the request engine behind the clients, and the
escape hatch for endpoints kneo-client does not wrap yet.

``request(method, path, ...)`` goes through the same retry, idempotency, request-ID and
error machinery as every wrapped endpoint and returns a ``TransportResponse`` (status below
300); failures raise ``KneoError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec

from kneo_client._session import AsyncExecutor, AsyncSession, BlockingExecutor, BlockingSession
from kneo_proto import (
    DEFAULT_MAX_RESPONSE_BYTES,
    CallOptions,
    ClientConfig,
    Finished,
    KneoDecodeError,
    Profile,
    RetryBudget,
    RetryPolicy,
    TokenBucket,
)
from kneo_proto._operation import raw_operation

if TYPE_CHECKING:
    import ssl

    from kneo_drivers._transport import httpcore

__all__ = ["DEFAULT_RETRY_BUDGET", "SyncTransport", "Transport", "TransportResponse"]

DEFAULT_RETRY_BUDGET = RetryBudget()


class TransportResponse:
    """A successful response from ``Transport.request``.

    Attributes:
        status_code: The HTTP status.
        headers: The response headers (names as received; use ``header`` for lookups).
        content: The raw body.
        request_id: The call's ``X-Request-ID``.
        idempotency_key: The ``Idempotency-Key`` sent (POST only).
        attempts: Attempts the call took.
    """

    __slots__ = (
        "_response",
        "attempts",
        "content",
        "headers",
        "idempotency_key",
        "request_id",
        "status_code",
    )

    def __init__(self, finished: Finished[bytes]) -> None:
        self.status_code = finished.response.status
        self.headers = dict(finished.response.headers)
        self.content = finished.result
        self.request_id = finished.request_id
        self.idempotency_key = finished.idempotency_key
        self.attempts = finished.attempts
        self._response = finished.response

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        return self._response.header(name)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            KneoDecodeError: if the body is not JSON.
        """
        try:
            return msgspec.json.decode(self.content)
        except msgspec.DecodeError as exc:
            raise KneoDecodeError(
                f"response body is not JSON: {exc}",
                status=self.status_code,
                request_id=self.request_id,
                idempotency_key=self.idempotency_key,
            ) from None

    def __repr__(self) -> str:
        return f"<TransportResponse {self.status_code} request_id={self.request_id}>"


def _warn_if_key_in_clear(config: ClientConfig) -> None:
    if config.sends_key_in_clear:
        import logging  # here, not at the top: most programs never need this warning

        logging.getLogger("kneo_client.transport").warning(
            "allow_insecure_http is set: the API key will be sent unencrypted to %s",
            config.origin,
        )


def _tls_settings(profile: Profile, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """Return the caller's context, else one trusting the profile's ``ca_bundle``.

    None (neither) leaves the transport library's verifying default, backed by the system
    trust store.
    """
    if ssl_context is not None or profile.ca_bundle is None:
        return ssl_context
    from kneo_drivers._transport import tls_context

    return tls_context(profile.ca_bundle)


def _request_options(headers: Mapping[str, str] | None, request_id: str | None) -> CallOptions:
    return CallOptions(headers=dict(headers) if headers else None, request_id=request_id)


class Transport:
    """Async HTTP transport for one platform instance.

    Args:
        profile: The resolved profile.
        http_client: A caller-owned ``httpcore2.AsyncConnectionPool``; ``aclose`` leaves it
            open.
        retry_policy: Defaults to ``RetryPolicy()`` (3 attempts, exponential backoff).
        retry_budget: The shared retry budget; None disables it.
        max_connections: Size of the pool this transport creates.
        ssl_context: TLS settings for the pool this transport creates; by default the
            system's trust store, or the profile's ``ca_bundle`` when it names one.
        max_response_bytes: The largest response body accepted (16 MiB by default).
        driver: An async driver to use instead (e.g. ``AsyncMemoryDriver`` in tests).

    Raises:
        KneoInsecureTransportError: if the key would go over plain http to a non-loopback
            host and the profile does not allow it.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        http_client: httpcore.AsyncConnectionPool | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: AsyncExecutor | None = None,
    ) -> None:
        config = profile.client_config(retry_policy, max_response_bytes=max_response_bytes)
        _warn_if_key_in_clear(config)
        if driver is None:
            from kneo_drivers.anyio import AsyncDriver

            if http_client is None:
                ssl_context = _tls_settings(profile, ssl_context)
            driver = AsyncDriver(
                pool=http_client, max_connections=max_connections, ssl_context=ssl_context
            )
        budget = None if retry_budget is None else TokenBucket(retry_budget)
        self._profile = profile
        self._driver = driver
        self._session = AsyncSession(config, budget, driver=driver)

    @property
    def profile(self) -> Profile:
        """The profile this transport is bound to."""
        return self._profile

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The shared retry budget (``available`` tokens), or None when disabled."""
        return self._session.budget

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> TransportResponse:
        """Send a request with auth, retries, idempotency and error mapping.

        Args:
            method: HTTP method (GET, POST, ...).
            path: Path relative to the base URL, e.g. ``/v1/runs``.
            json: JSON body.
            params: Query parameters.
            headers: Extra headers; auth, ``Idempotency-Key`` and ``X-Request-ID`` win.
            idempotency_key: Key for a POST (auto-generated when None); ignored otherwise.
            request_id: ``X-Request-ID`` to send instead of a generated one.

        Returns:
            TransportResponse: the successful response.

        Raises:
            KneoError: a subclass, once retries are exhausted or not allowed.
        """
        operation = raw_operation(
            method, path, json=json, params=params, idempotency_key=idempotency_key
        )
        session = self._session.with_options(_request_options(headers, request_id))
        return TransportResponse(await session.execute(operation))

    async def aclose(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        if self._session.state.closed:
            return
        self._session.state.closed = True
        close = getattr(self._driver, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class SyncTransport:
    """Blocking HTTP transport for one platform instance; safe to share between threads.

    It runs on httpcore's sync pool and never touches an event loop, so it works in
    notebooks and inside worker threads of async programs.

    Args:
        profile: The resolved profile.
        http_client: A caller-owned ``httpcore2.ConnectionPool``; ``close`` leaves it open.
        retry_policy: Defaults to ``RetryPolicy()``.
        retry_budget: The shared retry budget; None disables it.
        max_connections: Size of the pool this transport creates.
        ssl_context: TLS settings for the pool this transport creates; by default the
            system's trust store, or the profile's ``ca_bundle`` when it names one.
        max_response_bytes: The largest response body accepted (16 MiB by default).
        driver: A blocking driver to use instead (e.g. ``MemoryDriver`` in tests).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        http_client: httpcore.ConnectionPool | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: BlockingExecutor | None = None,
    ) -> None:
        from kneo_drivers.blocking import LockedTokenBucket

        config = profile.client_config(retry_policy, max_response_bytes=max_response_bytes)
        _warn_if_key_in_clear(config)
        if driver is None:
            from kneo_drivers.blocking import BlockingDriver

            if http_client is None:
                ssl_context = _tls_settings(profile, ssl_context)
            driver = BlockingDriver(
                pool=http_client, max_connections=max_connections, ssl_context=ssl_context
            )
        budget = None if retry_budget is None else LockedTokenBucket(retry_budget)
        self._profile = profile
        self._driver = driver
        self._session = BlockingSession(config, budget, driver=driver)

    @property
    def profile(self) -> Profile:
        """The profile this transport is bound to."""
        return self._profile

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The shared retry budget (``available`` tokens), or None when disabled."""
        return self._session.budget

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> TransportResponse:
        """Blocking version of ``Transport.request``: same arguments, same semantics."""
        operation = raw_operation(
            method, path, json=json, params=params, idempotency_key=idempotency_key
        )
        session = self._session.with_options(_request_options(headers, request_id))
        return TransportResponse(session.execute(operation))

    def close(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        if self._session.state.closed:
            return
        self._session.state.closed = True
        close = getattr(self._driver, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> SyncTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
