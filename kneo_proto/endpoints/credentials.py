"""Credentials: the inventory of credential references (never secret material)."""

from __future__ import annotations

from kneo_proto._operation import Parts, endpoint
from kneo_proto.models import CredentialInventoryResponse

__all__ = ["list_credentials"]


@endpoint("GET", "/v1/security/credentials", CredentialInventoryResponse)
def list_credentials() -> Parts:
    """List the credential references the platform knows. ``GET /v1/security/credentials``.

    Returns:
        CredentialInventoryResponse: references only; the platform never returns secrets.
    """
    return Parts()
