"""``Transport`` and ``SyncTransport``: the request engine behind the clients, and the
escape hatch for endpoints kneo-client does not wrap yet.

``request(method, path, ...)`` goes through the same retry, idempotency, request-ID and
error machinery as every wrapped endpoint and returns a ``TransportResponse`` (status below
300); failures raise ``KneoError`` subclasses. Everything the two colours share lives in
``TransportBase``; each class here adds only its drivers, its session and its ``async def``
or ``def`` methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import msgspec

from kneo_client._closing import AsyncClosing, BlockingClosing
from kneo_client._session import AsyncSession, BlockingSession
from kneo_client._transport_base import (
    DEFAULT_RETRY_BUDGET,
    PoolSettings,
    TransportBase,
    request_options,
)
from kneo_proto import (
    CallOptions,
    ClientConfig,
    Finished,
    KneoDecodeError,
    RetryBudget,
    TokenBucket,
)
from kneo_proto._operation import raw_operation

if TYPE_CHECKING:
    import httpx

    from kneo_drivers._transport import httpcore
    from kneo_drivers.contract import AsyncExecutor, BlockingExecutor

__all__ = ["DEFAULT_RETRY_BUDGET", "SyncTransport", "Transport", "TransportResponse"]


class TransportResponse:
    """A successful response from ``Transport.request``.

    Attributes:
        status_code: The HTTP status.
        headers: The response headers (names as received; use ``header`` for lookups).
        content: The raw body.
        request_id: The ``X-Request-ID`` the platform returned, else the one sent.
        sent_request_id: The ``X-Request-ID`` kneo-client sent.
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
        "sent_request_id",
        "status_code",
    )

    def __init__(self, finished: Finished[bytes]) -> None:
        self.status_code = finished.response.status
        self.headers = dict(finished.response.headers)
        self.content = finished.result
        self.request_id = finished.request_id
        self.sent_request_id = finished.sent_request_id
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


class Transport(
    TransportBase[
        "httpcore.AsyncConnectionPool | httpx.AsyncClient", "AsyncExecutor", AsyncSession
    ],
    AsyncClosing,
):
    """Async HTTP transport for one platform instance (asyncio or trio).

    ``http_client`` takes an ``httpcore2.AsyncConnectionPool`` or ``httpx.AsyncClient``,
    ``driver`` an async driver; ``__init__`` describes every argument and what it raises.
    ``async with Transport(profile) as t:`` closes it on exit.
    """

    _blocking = False

    def _httpx_driver(
        self, client: httpcore.AsyncConnectionPool | httpx.AsyncClient | None
    ) -> AsyncExecutor:
        from kneo_drivers.httpx import HttpxAsyncDriver

        return HttpxAsyncDriver(cast("httpx.AsyncClient", client))

    def _pool_driver(
        self, pool: httpcore.AsyncConnectionPool | httpx.AsyncClient | None, settings: PoolSettings
    ) -> AsyncExecutor:
        from kneo_drivers.anyio import AsyncDriver

        return AsyncDriver(pool=cast("httpcore.AsyncConnectionPool | None", pool), **settings)

    def _session_for(
        self,
        config: ClientConfig,
        budget: RetryBudget | None,
        options: CallOptions,
        driver: AsyncExecutor,
    ) -> AsyncSession:
        bucket = None if budget is None else TokenBucket(budget)
        return AsyncSession(config, bucket, options, driver=driver)

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
        options = request_options(headers, request_id)
        return TransportResponse(await self._session.execute(operation, options))

    async def aclose(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        close = self._driver_closer("aclose")
        if close is not None:
            await close()


class SyncTransport(
    TransportBase["httpcore.ConnectionPool | httpx.Client", "BlockingExecutor", BlockingSession],
    BlockingClosing,
):
    """Blocking HTTP transport for one platform instance; safe to share between threads.

    It runs on httpcore's sync pool and never touches an event loop, so it works in
    notebooks and inside worker threads of async programs. ``http_client`` takes an
    ``httpcore2.ConnectionPool`` or ``httpx.Client``, ``driver`` a blocking driver;
    ``__init__`` describes every argument and what it raises. ``with SyncTransport(profile)
    as t:`` closes it on exit.
    """

    _blocking = True

    def _httpx_driver(
        self, client: httpcore.ConnectionPool | httpx.Client | None
    ) -> BlockingExecutor:
        from kneo_drivers.httpx import HttpxBlockingDriver

        return HttpxBlockingDriver(cast("httpx.Client", client))

    def _pool_driver(
        self, pool: httpcore.ConnectionPool | httpx.Client | None, settings: PoolSettings
    ) -> BlockingExecutor:
        from kneo_drivers.blocking import BlockingDriver

        return BlockingDriver(pool=cast("httpcore.ConnectionPool | None", pool), **settings)

    def _session_for(
        self,
        config: ClientConfig,
        budget: RetryBudget | None,
        options: CallOptions,
        driver: BlockingExecutor,
    ) -> BlockingSession:
        from kneo_drivers.blocking import LockedTokenBucket  # its lock survives a fork

        bucket = None if budget is None else LockedTokenBucket(budget)
        return BlockingSession(config, bucket, options, driver=driver)

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
        options = request_options(headers, request_id)
        return TransportResponse(self._session.execute(operation, options))

    def close(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        close = self._driver_closer("close")
        if close is not None:
            close()
