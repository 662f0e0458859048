"""The platform side of Idempotency-Key: remember each keyed POST's response for a while.

Invariants (spec: info.description, "Idempotency"): a key is bound to the first request's
fingerprint (method, path and payload); a repeat with the same fingerprint gets the stored
status and body back, a repeat with another fingerprint is a mismatch, and a repeat that
arrives before the first response was delivered (``ready_at``, set when the answer is held
back by added latency) is "in progress". A key is forgotten ``ttl`` seconds after its first
use, and a new request may then use it afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

__all__ = ["InProgress", "Mismatch", "Replay", "Stored", "IdempotencyStore", "fingerprint"]


@dataclass(frozen=True, slots=True)
class Stored:
    """The first response to a key, as it is replayed."""

    fingerprint: bytes
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    created: float
    ready_at: float


@dataclass(frozen=True, slots=True)
class Replay:
    """The key was seen with this payload: answer with the stored response."""

    stored: Stored


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was seen with another payload."""


@dataclass(frozen=True, slots=True)
class InProgress:
    """The key's first response is still being delivered, for ``retry_after`` seconds."""

    retry_after: float


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """Return what makes two keyed requests "the same": method, path and payload.

    A JSON payload is compared by value (key order and whitespace do not matter); anything
    else byte for byte.
    """
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except msgspec.DecodeError:
        canonical = body
    return method.encode() + b" " + path.encode() + b"\n" + canonical


class IdempotencyStore:
    """Responses of keyed POSTs, each kept ``ttl`` seconds after its key was first used."""

    def __init__(self, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("idempotency_ttl must be positive")
        self.ttl = ttl
        self._entries: dict[str, Stored] = {}

    def look_up(self, key: str, print_: bytes, now: float) -> Replay | Mismatch | InProgress | None:
        """Return what a request with ``key`` and fingerprint ``print_`` gets, or None (run it)."""
        self._expire(now)
        stored = self._entries.get(key)
        if stored is None:
            return None
        if stored.fingerprint != print_:
            return Mismatch()
        if now < stored.ready_at:
            return InProgress(stored.ready_at - now)
        return Replay(stored)

    def record(self, key: str, stored: Stored) -> None:
        """Remember the first response to ``key``."""
        self._entries[key] = stored

    def hold(self, key: str, until: float) -> None:
        """Mark ``key``'s response as still being delivered until ``until``."""
        stored = self._entries.get(key)
        if stored is not None:
            self._entries[key] = Stored(
                stored.fingerprint,
                stored.status,
                stored.body,
                stored.headers,
                stored.created,
                until,
            )

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._entries.items() if now >= s.created + self.ttl]:
            del self._entries[key]
