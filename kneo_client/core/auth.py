"""API-key authentication: ``AuthScheme`` and ``ApiKeyAuth``."""

from kneo_proto import ApiKeyAuth, AuthScheme

__all__ = ["ApiKeyAuth", "AuthScheme"]
