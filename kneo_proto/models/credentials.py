"""Models of the credential inventory.

Invariants: the platform returns credentials by reference only; no model here has a field that
could hold a secret value.
"""

from __future__ import annotations

import datetime

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType

__all__ = ["CredentialInventoryResponse", "CredentialReference"]


class CredentialReference(KneoModel, frozen=True, kw_only=True):
    """A credential the platform knows, by name and provider; never its secret value."""

    name: str
    provider: Expected[str] = UNSET
    kind: Expected[str] = UNSET
    scopes: Expected[list[str]] = UNSET
    created_at: Expected[datetime.datetime] = UNSET
    last_rotated_at: datetime.datetime | UnsetType | None = UNSET


class CredentialInventoryResponse(KneoModel, frozen=True, kw_only=True):
    """Every credential reference the platform knows."""

    credentials: list[CredentialReference]
    count: Expected[int] = UNSET
