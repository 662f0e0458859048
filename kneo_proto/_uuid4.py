"""Version-4 UUID strings from the operating system's randomness.

Invariant: 122 bits come from ``random.SystemRandom`` (``os.urandom``), so ``random.seed`` in
user code or a fork cannot make two keys collide; the version and variant bits are those of
RFC 9562. Written here rather than taken from ``uuid``, whose import (it loads ``platform``)
cost more than the rest of this module's callers.
"""

from __future__ import annotations

import random

__all__ = ["uuid4_text"]

_SYSTEM_RANDOM = random.SystemRandom()
_VERSION_MASK = 0xF000 << 64
_VERSION_4 = 0x4000 << 64
_VARIANT_MASK = 0xC000 << 48
_VARIANT_RFC = 0x8000 << 48


def uuid4_text() -> str:
    """Return a fresh random UUID in its 36-character text form."""
    value = _SYSTEM_RANDOM.getrandbits(128)
    value = (value & ~_VERSION_MASK & ~_VARIANT_MASK) | _VERSION_4 | _VARIANT_RFC
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
