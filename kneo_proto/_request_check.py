"""Strict on request: refuse the caller's mistakes before a byte is sent (STYLE.md 1.7).

``encode_body`` checks a request body against its model and returns the JSON to send:
- a dict may hold only the model's fields, at the top and inside every nested model-typed
  field (lists and dicts of models included); an unknown key is refused with its path and
  the closest known field, since msgspec ignores unknown keys and the platform would too;
- a dict's values must have the model's types exactly (``msgspec.convert(strict=True)``): the
  dict is what gets sent, so a value that would only convert ("10" for an integer) is refused;
- a model instance is validated too (msgspec does not validate on construction): its JSON is
  decoded back into the model, which checks every field as the platform will see it.
``check_choice`` refuses a value outside a closed ``Literal`` (a spec ``enum``), and
``check_collection`` a lone string where a collection of strings is meant.

Invariants: pure (msgspec and the stdlib only); every refusal is a ``KneoUsageError``; the
field table of a model type is built once, on first use, and reused by every call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

import msgspec

from kneo_proto._errors import KneoUsageError

__all__ = ["check_choice", "check_collection", "encode_body"]

_encoder = msgspec.json.Encoder()

# Walks one value whose declared type holds a model somewhere: (value, path, body name).
_Walk = Callable[[object, str, str], None]


class _ModelTable:
    """What checking one model type needs: wire field names, walks, a strict decoder."""

    __slots__ = ("decoder", "fields", "name", "nested")

    def __init__(self, cls: type[Any]) -> None:
        info = msgspec.inspect.type_info(cls)
        infos = info.fields if isinstance(info, msgspec.inspect.StructType) else None
        self.name = cls.__name__
        # None: a body type that is no model (a plain ``dict``) has no fields to check keys by.
        self.fields = None if infos is None else frozenset(field.encode_name for field in infos)
        tag_field = getattr(info, "tag_field", None)  # a tagged model's dict carries its tag
        if self.fields is not None and tag_field is not None:
            self.fields |= {tag_field}
        self.nested: dict[str, tuple[str, _Walk]] = {}
        for field in infos or ():
            walk = _walk_for(field.type)
            if walk is not None:
                self.nested[field.encode_name] = (field.name, walk)
        self.decoder = msgspec.json.Decoder(cls)

    def check(self, value: object, path: str, root: str) -> None:
        """Refuse unknown keys in ``value`` (a dict for this model, or an instance of it)."""
        if isinstance(value, Mapping):
            self.check_mapping(value, path, root)
        elif isinstance(value, msgspec.Struct):
            for key, (attribute, walk) in self.nested.items():
                walk(getattr(value, attribute, None), f"{path}.{key}", root)

    def check_mapping(self, value: Mapping[Any, Any], path: str, root: str) -> None:
        """Refuse the first key of ``value`` this model lacks, then walk its nested models."""
        fields = self.fields
        if fields is not None and not fields.issuperset(value):  # one pass in C over the keys
            unknown = next(key for key in value if key not in fields)
            raise _unknown_field(unknown, self, path, root)
        for key, (_, walk) in self.nested.items():
            if key in value:
                walk(value[key], f"{path}.{key}", root)


_tables: dict[type[Any], _ModelTable] = {}


def _table(cls: type[Any]) -> _ModelTable:
    table = _tables.get(cls)
    if table is None:
        table = _tables[cls] = _ModelTable(cls)
    return table


def _walk_for(kind: msgspec.inspect.Type) -> _Walk | None:
    """The walk for values of ``kind``, or None when ``kind`` holds no model."""
    if isinstance(kind, msgspec.inspect.StructType):
        cls = kind.cls  # looked up at walk time: a model may contain itself
        return lambda value, path, root: _table(cls).check(value, path, root)
    if isinstance(kind, msgspec.inspect.DictType):
        walk = _walk_for(kind.value_type)
        return None if walk is None else functools.partial(_walk_values, walk)
    item_type = getattr(kind, "item_type", None)  # list, set, frozenset, tuple[X, ...]
    if item_type is not None:
        walk = _walk_for(item_type)
        return None if walk is None else functools.partial(_walk_items, walk)
    if isinstance(kind, msgspec.inspect.UnionType):
        # msgspec allows at most one dict-like and one array-like member, so each member's
        # walk sees only values of its own shape. A tagged union of models is the exception:
        # the tag picks the model, so its members are left to msgspec (which checks the tag).
        members = kind.types
        if sum(isinstance(t, msgspec.inspect.StructType) for t in members) > 1:
            members = tuple(t for t in members if not isinstance(t, msgspec.inspect.StructType))
        walks = [w for w in map(_walk_for, members) if w is not None]
        if len(walks) <= 1:
            return walks[0] if walks else None
        return functools.partial(_walk_each, tuple(walks))
    return None


def _walk_each(walks: tuple[_Walk, ...], value: object, path: str, root: str) -> None:
    for walk in walks:
        walk(value, path, root)


def _walk_values(walk: _Walk, value: object, path: str, root: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            walk(item, f"{path}[{key!r}]", root)


def _walk_items(walk: _Walk, value: object, path: str, root: str) -> None:
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            walk(item, f"{path}[{index}]", root)


def _unknown_field(key: object, table: _ModelTable, path: str, root: str) -> KneoUsageError:
    where = "" if path == "$" else f" at {path}"
    known = sorted(table.fields or ())
    message = f"unknown field {key!r}{where} in the {root} body"
    hint = _closest(str(key), known)
    message += "." if hint is None else f"; did you mean {hint!r}?"
    of = "" if path == "$" else f" of {table.name}"
    return KneoUsageError(f"{message} Known fields{of}: {', '.join(known)}")


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most likely meant by ``word``.

    A close spelling, else the longest candidate that ``word`` starts with or that starts
    with ``word`` ("descending" -> "desc"); None when nothing is close.
    """
    # difflib is imported only to explain a refusal: it is not needed on the happy path.
    import difflib

    word = word.lower()
    candidates = list(candidates)
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    prefixes = [c for c in candidates if c and (word.startswith(c) or c.startswith(word))]
    return max(prefixes, key=len) if word and prefixes else None


def encode_body(body: object, body_type: type[Any]) -> bytes:
    """Check ``body`` (a ``body_type`` instance or a dict) and return it encoded as JSON.

    Raises:
        KneoUsageError: naming the unknown key, the mistyped field or the wrong body type.
    """
    table = _table(body_type)
    if isinstance(body, dict):  # the cheapest test first: this runs on every POST and PUT
        return _encode_mapping(table, body, body_type)
    if isinstance(body, body_type):
        if table.nested:
            table.check(body, "$", table.name)
        encoded = _encode(body)
        try:
            # Decoding what will be sent checks every field as the platform will see it, at
            # about the cost of the encoding (docs/usage.md, "Request validation").
            table.decoder.decode(encoded)
        except msgspec.DecodeError as exc:
            raise KneoUsageError(f"invalid {table.name} body: {exc}") from None
        return encoded
    if isinstance(body, Mapping):
        return _encode_mapping(table, body, body_type)
    raise KneoUsageError(f"body must be a {table.name} or a dict, not {type(body).__name__}")


def _encode_mapping(table: _ModelTable, body: Mapping[Any, Any], body_type: type[Any]) -> bytes:
    table.check_mapping(body, "$", table.name)
    try:
        # Strict: the dict itself is what gets sent, so a value that would only convert
        # (the string "10" for an integer field) would reach the platform mistyped.
        msgspec.convert(body, body_type, strict=True)
    except msgspec.ValidationError as exc:
        raise KneoUsageError(f"invalid {table.name} body: {exc}") from None
    return _encode(body)


def _encode(body: object) -> bytes:
    try:
        return _encoder.encode(body)
    except (TypeError, ValueError, OverflowError) as exc:
        raise KneoUsageError(f"body cannot be encoded as JSON: {exc}") from None


def check_choice(name: str, value: object, choices: Any) -> None:
    """Refuse ``value`` unless it is None (not sent) or one of the ``choices`` Literal's values.

    Raises:
        KneoUsageError: naming the parameter, the allowed values and the closest one.
    """
    allowed: tuple[str, ...] = get_args(choices)
    if value is None or value in allowed:
        return
    message = f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}"
    hint = _closest(value, allowed) if isinstance(value, str) else None
    if hint is not None:
        message += f"; did you mean {hint!r}?"
    raise KneoUsageError(message)


def check_collection(name: str, value: object, what: str) -> frozenset[str]:
    """Return ``value``, a collection of strings, as a frozenset; refuse a lone string.

    A ``str`` is itself an iterable of strings (its letters), so ``"completed"`` would be
    taken as ``{"c", "o", ...}`` and never match: it is refused, as are bytes and non-strings.

    Raises:
        KneoUsageError: naming the parameter and showing the collection that was meant.
    """
    if isinstance(value, str | bytes | bytearray):
        text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
        kind = "the string" if isinstance(value, str) else "the bytes"
        raise KneoUsageError(
            f"{name} must be a collection of {what} such as {{{text!r}}}, not {kind} {value!r}"
        )
    if not isinstance(value, Iterable):
        raise KneoUsageError(f"{name} must be a collection of {what}, not {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise KneoUsageError(f"{name} must hold strings, not {type(item).__name__} {item!r}")
    return frozenset(items)
