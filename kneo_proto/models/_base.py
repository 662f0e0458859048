"""The one base class every wire model inherits, and the markers of a tolerant response.

Invariants: models are immutable, keyword-only, named as on the wire, and tolerant of fields
the platform adds later (unknown fields are ignored on decode). Fields the server may omit
default to ``UNSET`` and are left out when a model is encoded as a request body.

Response models follow ADR 0011 (liberal in what we accept): only a model's essential fields
(its IDs, its ``status``, the items of a list, the verdict of a check) are required. Every
other field reads as ``UNSET`` when the platform leaves it out and as ``None`` when it sends
``null``. ``Expected[T]`` marks a field ``spec/`` requires: ``strict_responses`` insists on
it (``kneo_proto.models.strict_response_type``); a plain ``T | UnsetType | None`` field is
optional in the spec too.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias, TypeVar

import msgspec

__all__ = ["EXPECTED", "UNSET", "Expected", "KneoModel", "UnsetType"]

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType

T = TypeVar("T")

EXPECTED = msgspec.Meta(extra={"x-kneo": "expected"})
"""The marker of a field ``spec/`` requires but a tolerant decode does without."""

Expected: TypeAlias = Annotated[T | UnsetType | None, EXPECTED]
"""A response field ``spec/`` requires: ``UNSET`` when the platform omits it, ``None`` when
it sends ``null`` (ADR 0011); ``strict_responses=True`` refuses both."""


# Built once, so encoding a model needs no per-call setup.
_JSON_ENCODER = msgspec.json.Encoder()


class KneoModel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """Base of every request and response model: frozen, keyword-only, forward compatible."""

    def to_dict(self) -> dict[str, Any]:
        """Return the model as plain Python builtins, keyed by the wire names.

        Nested models become dicts, datetimes ISO 8601 strings, and fields left ``UNSET``
        are omitted (a ``None`` field stays ``None``): the shape of the model's JSON on the
        wire. Fields the platform sent that the model does not declare are not kept (a
        decode ignores them).

        Returns:
            A new ``dict``; changing it does not change the model.
        """
        built: dict[str, Any] = msgspec.to_builtins(self)
        return built

    def to_json(self) -> str:
        """Return the model as a JSON document: the same content as ``to_dict()``.

        Returns:
            Compact JSON text (``str``, for logs, files and ``json.loads``); encode it, or
            use ``msgspec.json.encode(model)``, when bytes are needed.
        """
        return _JSON_ENCODER.encode(self).decode("utf-8")
