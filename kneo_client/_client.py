"""``KneoClient`` (async) and ``SyncKneoClient`` (blocking): the public entry points.

Each owns one transport and mounts ``.platform`` and ``.agent`` on it. Both mount the same
namespace tables, so every endpoint is served to async and blocking users alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from kneo_client._bind import AsyncMode, BlockingMode
from kneo_client.agent import AgentClient
from kneo_client.core.profiles import load_profile
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.platform import PlatformClient
from kneo_proto import CallOptions, Profile, RetryPolicy, TokenBucket
from kneo_proto._profiles import PROFILE_FIELDS

__all__ = ["KneoClient", "SyncKneoClient"]

# What from_profile hands to load_profile: its file, and every profile field (one list).
_PROFILE_KEYS = frozenset({"config_file", *PROFILE_FIELDS})


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
) -> CallOptions:
    return CallOptions(
        timeout=timeout,
        deadline=deadline,
        retry_policy=retry_policy,
        headers=dict(headers) if headers else None,
        request_id=request_id,
    )


class KneoClient:
    """Async client for a Kneo Agent Platform instance (asyncio or trio).

    Args:
        profile: Resolved profile carrying URL, API key, scheme and timeout.
        retry_policy: Override the default retry policy (3 attempts, exponential backoff).
        strict_responses: Validate every response against ``spec/`` in full (True) or
            tolerantly (False, ADR 0011); None keeps the profile's setting.
        **transport_options: Passed to ``Transport`` (``retry_budget``,
            ``max_connections``, ``keepalive_expiry``, ``ssl_context``, ``verify``, ``proxy``,
            ``trust_env``, ``http_client``, ``driver``).

    Attributes:
        platform: Operational surface: runs, traces, audit, credentials, policies, health.
        agent: Development surface: spec validate, compile, explain, policy_report, run.
        profile: The resolved profile this client is bound to.

    The transport is built eagerly; nothing touches the network until the first call.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        retry_policy: RetryPolicy | None = None,
        strict_responses: bool | None = None,
        **transport_options: Any,
    ) -> None:
        self.profile = profile = _with_strictness(profile, strict_responses)
        self._transport = Transport(profile, retry_policy=retry_policy, **transport_options)
        self._mount(self._transport._session)

    def _mount(self, session: Any) -> None:
        self.platform: PlatformClient[AsyncMode] = PlatformClient(session)
        self.agent: AgentClient[AsyncMode] = AgentClient(session)

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> KneoClient:
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
    ) -> KneoClient:
        """Return a client sharing this one's connections, with per-call overrides.

        Args:
            timeout: Seconds for each phase of each attempt.
            deadline: Seconds each whole call may take, retries and sleeps included.
            retry_policy: The retry policy for its calls.
            headers: Extra headers for its calls.
            request_id: The ``X-Request-ID`` for its calls.
        """
        copy = object.__new__(KneoClient)
        copy.profile = self.profile
        copy._transport = self._transport
        options = _options(timeout, deadline, retry_policy, headers, request_id)
        copy._mount(self._transport._session.with_options(options))
        return copy

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The client's shared retry budget, or None when disabled."""
        return self._transport.retry_budget

    async def aclose(self) -> None:
        """Close the underlying transport. Idempotent."""
        await self._transport.aclose()

    async def __aenter__(self) -> KneoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<KneoClient profile={self.profile.name!r} url={self.profile.url!r}>"


class SyncKneoClient:
    """Blocking client for a Kneo Agent Platform instance; safe to share between threads.

    The same ``.platform`` and ``.agent`` surface as ``KneoClient``, without ``await``. It
    never touches an event loop.

    Args:
        profile: Resolved profile carrying URL, API key, scheme and timeout.
        retry_policy: Override the default retry policy.
        strict_responses: Validate every response against ``spec/`` in full (True) or
            tolerantly (False, ADR 0011); None keeps the profile's setting.
        **transport_options: Passed to ``SyncTransport``.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        retry_policy: RetryPolicy | None = None,
        strict_responses: bool | None = None,
        **transport_options: Any,
    ) -> None:
        self.profile = profile = _with_strictness(profile, strict_responses)
        self._transport = SyncTransport(profile, retry_policy=retry_policy, **transport_options)
        self._mount(self._transport._session)

    def _mount(self, session: Any) -> None:
        self.platform: PlatformClient[BlockingMode] = PlatformClient(session)
        self.agent: AgentClient[BlockingMode] = AgentClient(session)

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> SyncKneoClient:
        """Resolve a profile with ``load_profile`` and build a client (see ``KneoClient``)."""
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
    ) -> SyncKneoClient:
        """Return a client sharing this one's connections, with per-call overrides."""
        copy = object.__new__(SyncKneoClient)
        copy.profile = self.profile
        copy._transport = self._transport
        options = _options(timeout, deadline, retry_policy, headers, request_id)
        copy._mount(self._transport._session.with_options(options))
        return copy

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The client's shared retry budget, or None when disabled."""
        return self._transport.retry_budget

    def close(self) -> None:
        """Close the underlying transport. Idempotent."""
        self._transport.close()

    def __enter__(self) -> SyncKneoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SyncKneoClient profile={self.profile.name!r} url={self.profile.url!r}>"
