"""How many iterations the reliability families run.

CI runs the counts the plan gives (``KNEO_RELIABILITY_SCALE`` unset, or ``1``); long runs set
``KNEO_RELIABILITY_SCALE=10`` (or any positive integer) to multiply every count.
"""

from __future__ import annotations

import os

__all__ = ["SCALE", "scaled"]


def _read_scale() -> int:
    raw = os.environ.get("KNEO_RELIABILITY_SCALE", "1")
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(
            f"KNEO_RELIABILITY_SCALE must be a positive integer, got {raw!r}"
        ) from None
    if value < 1:
        raise SystemExit(f"KNEO_RELIABILITY_SCALE must be a positive integer, got {raw!r}")
    return value


SCALE = _read_scale()


def scaled(ci_count: int) -> int:
    """The CI count multiplied by ``KNEO_RELIABILITY_SCALE``."""
    return ci_count * SCALE
