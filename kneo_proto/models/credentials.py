"""Models of the credential inventory.

Invariants: the platform returns credentials by reference only; no model here has a field that
could hold a secret value.
"""

from __future__ import annotations

import datetime

from kneo_proto.models._base import UNSET, KneoModel, UnsetType

__all__ = ["CredentialInventoryResponse", "CredentialReference"]


class CredentialReference(KneoModel, frozen=True, kw_only=True):
    """A credential the platform knows, by name and provider; never its secret value."""

    name: str
    provider: str
    kind: str
    scopes: list[str]
    created_at: datetime.datetime
    last_rotated_at: datetime.datetime | UnsetType = UNSET


class CredentialInventoryResponse(KneoModel, frozen=True, kw_only=True):
    """Every credential reference the platform knows."""

    credentials: list[CredentialReference]
    count: int
