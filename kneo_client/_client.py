"""``KneoClient`` (async) and ``SyncKneoClient`` (blocking): the public entry points.

Each owns one transport and mounts ``.platform`` and ``.agent`` on it. Both mount the same
namespace tables, so every endpoint is served to async and blocking users alike. Everything
the two share lives in ``_ClientBase``; each adds only its transport, its mode and its
``aclose`` or ``close``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Self, TypeVar

from kneo_client._bind import AsyncMode, BlockingMode, M
from kneo_client._closing import AsyncClosing, BlockingClosing
from kneo_client._session import AsyncSession, BlockingSession
from kneo_client.agent import AgentClient
from kneo_client.core.profiles import load_profile
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.platform import PlatformClient
from kneo_proto import CallOptions, Observer, Profile, RetryPolicy, TokenBucket
from kneo_proto._profiles import PROFILE_FIELDS

__all__ = ["KneoClient", "SyncKneoClient"]

# What from_profile hands to load_profile: its file, and every profile field (one list).
_PROFILE_KEYS = frozenset({"config_file", *PROFILE_FIELDS})

TransportT = TypeVar("TransportT", Transport, SyncTransport)


def _split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    profile = {k: v for k, v in overrides.items() if k in _PROFILE_KEYS}
    client = {k: v for k, v in overrides.items() if k not in _PROFILE_KEYS}
    return profile, client


def _with_strictness(profile: Profile, strict_responses: bool | None) -> Profile:
    if strict_responses is None or strict_responses == profile.strict_responses:
        return profile
    return dataclasses.replace(profile, strict_responses=strict_responses)


def _options(
    timeout: float | None,
    deadline: float | None,
    retry_policy: RetryPolicy | None,
    headers: Mapping[str, str] | None,
    request_id: str | None,
    observers: Iterable[Observer] | None,
) -> CallOptions:
    if observers is not None:
        from kneo_client._observe import checked_observers  # imports logging: not at the top

        observers = checked_observers(observers)
    return CallOptions(
        timeout=timeout,
        deadline=deadline,
        retry_policy=retry_policy,
        headers=dict(headers) if headers else None,
        request_id=request_id,
        observers=None if observers is None else tuple(observers),
    )


class _ClientBase(Generic[TransportT, M]):
    """A client of either colour: ``TransportT`` is its transport, ``M`` the mode its
    namespaces are bound in (``AsyncMode``: awaitables; ``BlockingMode``: results).
    """

    _transport_class: type[TransportT]
    _transport: TransportT
    _session: AsyncSession | BlockingSession
    profile: Profile
    platform: PlatformClient[M]
    agent: AgentClient[M]

    def __init__(
        self,
        profile: Profile,
        *,
        retry_policy: RetryPolicy | None = None,
        strict_responses: bool | None = None,
        **transport_options: Any,
    ) -> None:
        """Build the client and its transport; nothing touches the network until a call.

        Args:
            profile: Resolved profile carrying URL, API key, scheme and timeout.
            retry_policy: Override the default retry policy (3 attempts, exponential backoff).
            strict_responses: Validate every response against ``spec/`` in full (True) or
                tolerantly (False, ADR 0011); None keeps the profile's setting.
            **transport_options: Passed to the client's transport (``Transport`` or
                ``SyncTransport``, whose ``__init__`` describes each): ``retry_budget``,
                ``max_connections``, ``keepalive_expiry``, ``ssl_context``, ``verify``,
                ``proxy``, ``trust_env``, ``http_client``, ``driver``, ``observers``
                (callables given every event of every call) and ``tracing`` (False turns the
                OpenTelemetry spans and metric off; None keeps the profile's setting).
        """
        self.profile = profile = _with_strictness(profile, strict_responses)
        self._transport = self._transport_class(
            profile, retry_policy=retry_policy, **transport_options
        )
        self._mount(self._transport._session)

    def _mount(self, session: AsyncSession | BlockingSession) -> None:
        self._session = session  # what with_options derives from: this client's options
        self.platform = PlatformClient(session)
        self.agent = AgentClient(session)

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> Self:
        """Resolve a profile with ``load_profile`` and build a client.

        Args:
            name: Profile name; falls back to ``$KNEO_PROFILE``, then ``"default"``.
            **overrides: ``config_file``, ``url``, ``api_key``, ``auth_scheme``,
                ``timeout``, ``allow_insecure_http``, ``ca_bundle``, ``strict_responses``,
                ``proxy`` and ``trust_env`` go to ``load_profile``; anything else to the
                constructor.
        """
        profile_overrides, client_options = _split_overrides(overrides)
        return cls(load_profile(name, **profile_overrides), **client_options)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        retry_policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        observers: Iterable[Observer] | None = None,
    ) -> Self:
        """Return a client sharing this one's connections, with per-call overrides.

        Args:
            timeout: Seconds for each phase of each attempt.
            deadline: Seconds each whole call may take, retries and sleeps included.
            retry_policy: The retry policy for its calls.
            headers: Extra headers for its calls.
            request_id: The ``X-Request-ID`` for its calls.
            observers: The observers of its calls, instead of this client's (``observers``
                and the OpenTelemetry observer ``tracing`` added); ``()`` for none. None keeps
                this client's.
        """
        options = _options(timeout, deadline, retry_policy, headers, request_id, observers)
        clone = copy.copy(self)
        clone._mount(self._session.with_options(options))
        return clone

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The client's shared retry budget, or None when disabled."""
        return self._transport.retry_budget

    def __repr__(self) -> str:
        return f"<{type(self).__name__} profile={self.profile.name!r} url={self.profile.url!r}>"


class KneoClient(_ClientBase[Transport, AsyncMode], AsyncClosing):
    """Async client for a Kneo Agent Platform instance (asyncio or trio).

    Its constructor takes a ``Profile`` and keywords (``__init__`` describes each), or use
    ``KneoClient.from_profile()``; ``async with`` closes it on exit.

    Attributes:
        platform: Operational surface: runs, traces, audit, credentials, policies, health.
        agent: Development surface: spec validate, compile, explain, policy_report, run.
        profile: The resolved profile this client is bound to.

    The transport is built eagerly; nothing touches the network until the first call.
    """

    _transport_class = Transport

    async def aclose(self) -> None:
        """Close the underlying transport. Idempotent."""
        await self._transport.aclose()


class SyncKneoClient(_ClientBase[SyncTransport, BlockingMode], BlockingClosing):
    """Blocking client for a Kneo Agent Platform instance; safe to share between threads.

    The same ``.platform``, ``.agent`` and ``.profile`` as ``KneoClient``, and the same
    constructor, without ``await``. It never touches an event loop; ``with`` closes it on exit.
    """

    _transport_class = SyncTransport

    def close(self) -> None:
        """Close the underlying transport. Idempotent."""
        self._transport.close()
