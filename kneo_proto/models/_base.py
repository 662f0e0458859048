"""The one base class every wire model inherits.

Invariants: models are immutable, keyword-only, named as on the wire, and tolerant of fields
the platform adds later (unknown fields are ignored on decode). Fields the server may omit
default to ``UNSET`` and are left out when a model is encoded as a request body.
"""

from __future__ import annotations

import msgspec

__all__ = ["UNSET", "KneoModel", "UnsetType"]

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType


class KneoModel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """Base of every request and response model: frozen, keyword-only, forward compatible."""
