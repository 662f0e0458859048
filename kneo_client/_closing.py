"""Context managers for kneo-client's closable objects (transports and clients), one mixin per
colour: ``AsyncClosing`` gives ``async with`` to a class with ``async def aclose``,
``BlockingClosing`` gives ``with`` to one with ``def close``. Leaving the block closes the
object, whether the block raised or not, and never suppresses the exception.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "BlockingClosing"]


class AsyncClosing:
    """``async with obj as same:`` gives ``obj`` and awaits ``obj.aclose()`` on the way out."""

    async def aclose(self) -> None:
        """Release what the object holds (each subclass says what). Idempotent."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlockingClosing:
    """``with obj as same:`` gives ``obj`` and calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        """Release what the object holds (each subclass says what). Idempotent."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
