"""What ``spec/`` says a response must hold, derived from the tolerant response models.

Invariants: the response models are the one declaration (ADR 0011). A field without a
default is essential and required everywhere; an ``Expected[T]`` field is required by
``spec/``; every other field is optional. ``strict_response_type`` turns a model into a
twin Struct with exactly those rules (expected fields required, ``null`` refused wherever
the spec has no nullable field), used only to validate a body when ``strict_responses`` is
on; decoding into the models themselves stays tolerant. Twins are built once per model.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from kneo_proto.models._base import EXPECTED, UnsetType

__all__ = ["essential_fields", "expected_fields", "strict_response_type"]

_TWINS: dict[type, type] = {}
_UNIONS = (Union, types.UnionType)


def _is_expected(hint: Any) -> bool:
    return get_origin(hint) is Annotated and EXPECTED in hint.__metadata__


def essential_fields(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of ``model`` a response must carry even when decoded tolerantly."""
    return tuple(f.name for f in msgspec.structs.fields(model) if f.required)


def expected_fields(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields ``spec/`` requires that a tolerant decode reads as ``UNSET`` or ``None``."""
    return tuple(f.name for f in msgspec.structs.fields(model) if _is_expected(f.type))


def strict_response_type(hint: Any) -> Any:
    """Return ``hint`` with every model in it replaced by its strict twin (see the module)."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return _twin(hint)
    origin = get_origin(hint)
    if origin is Annotated:
        return strict_response_type(get_args(hint)[0])
    if origin in _UNIONS:
        kept = tuple(strict_response_type(a) for a in get_args(hint) if a is not type(None))
        return kept[0] if len(kept) == 1 else Union[kept]  # noqa: UP007 - built at run time
    if origin in (list, dict):
        return origin[tuple(strict_response_type(a) for a in get_args(hint))]
    return hint


def _required(hint: Any) -> Any:
    """An expected field's type, without the ``None`` and ``UNSET`` a tolerant decode allows."""
    inner = get_args(hint)[0]
    kept = tuple(a for a in get_args(inner) if a not in (type(None), UnsetType))
    return strict_response_type(kept[0] if len(kept) == 1 else Union[kept])  # noqa: UP007


def _twin(model: type[msgspec.Struct]) -> type[msgspec.Struct]:
    twin = _TWINS.get(model)
    if twin is not None:
        return twin
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(model):
        if _is_expected(info.type):
            fields.append((info.name, _required(info.type)))
        elif info.required:
            fields.append((info.name, strict_response_type(info.type)))
        else:
            fields.append((info.name, strict_response_type(info.type), info.default))
    renamed = {f.name: f.encode_name for f in msgspec.structs.fields(model)}
    twin = msgspec.defstruct(
        model.__name__, fields, kw_only=True, frozen=True, rename=renamed, module=__name__
    )
    _TWINS[model] = twin
    return twin
