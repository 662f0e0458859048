"""Paging and sorting of every list endpoint, with the spec's bounds.

Invariants (spec: parameters Limit, Offset, SortOrderAsc/Desc and each list's ``sort_by``
enum): ``limit`` is 1 to 1000 (default 100), ``offset`` is >= 0 (default 0), ``sort_by`` and
``sort_order`` take only their declared values; anything else is a 422 ``validation_error``.
Sorting is stable: items that tie keep their creation order (reversed for ``desc``), so a
page walk never skips or repeats an item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kneo_client.testing._wire import Query

__all__ = ["MAX_LIMIT", "Listing", "Page", "paginate"]

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SORT_ORDERS = ("asc", "desc")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """How one list endpoint sorts and filters its items.

    Attributes:
        sort_keys: Each allowed ``sort_by`` value and how to read it from an item.
        default_sort_by: The spec's default ``sort_by``.
        default_order: The spec's default ``sort_order``.
        filters: Each filter parameter and how to read the compared value from an item.
    """

    sort_keys: Mapping[str, Callable[[T], Any]]
    default_sort_by: str
    default_order: str
    filters: Mapping[str, Callable[[T], str | None]]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items, with the paging fields every list response echoes."""

    items: list[T]
    total: int
    limit: int
    offset: int
    sort_by: str
    sort_order: str

    def fields(self) -> dict[str, Any]:
        """Return the ``ListPage`` fields (count, total, limit, offset, sort_by, sort_order)."""
        return {
            "count": len(self.items),
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
            "sort_by": self.sort_by,
            "sort_order": self.sort_order,
        }


def paginate(items: Sequence[T], query: Query, listing: Listing[T]) -> Page[T]:
    """Filter, sort and cut ``items`` (given oldest first) as ``query`` asks.

    Raises:
        ApiError: 422 ``validation_error`` for a bad limit, offset, sort_by or sort_order.
    """
    limit = query.integer("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    offset = query.integer("offset", 0, minimum=0)
    sort_by = query.choice("sort_by", listing.default_sort_by, tuple(listing.sort_keys))
    sort_order = query.choice("sort_order", listing.default_order, SORT_ORDERS)
    chosen = list(items)
    for name, read in listing.filters.items():
        wanted = query.text(name)
        if wanted is not None:
            chosen = [item for item in chosen if read(item) == wanted]
    key = listing.sort_keys[sort_by]
    ordered = sorted(chosen, key=key)  # stable: ties stay oldest first
    if sort_order == "desc":
        ordered.reverse()
    return Page(ordered[offset : offset + limit], len(chosen), limit, offset, sort_by, sort_order)
