"""Sessions: what a facade's namespaces call through (config, driver, budget, options).

An ``AsyncSession`` and a ``BlockingSession`` each turn an ``Operation`` into a ``Call`` and
hand it to their driver. Everything they share with each other lives in ``kneo_proto``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Finished,
    KneoClientClosedError,
    Operation,
    TokenBucket,
)

if TYPE_CHECKING:
    from kneo_client._observe import SessionEmitters
    from kneo_drivers.contract import AsyncExecutor, BlockingExecutor

__all__ = ["AsyncSession", "BlockingSession"]

R = TypeVar("R")


@dataclass
class _State:
    closed: bool = False


@dataclass(frozen=True)
class _SessionBase:
    config: ClientConfig
    budget: TokenBucket | None
    options: CallOptions = field(default_factory=CallOptions)
    state: _State = field(default_factory=_State)

    def call(
        self, operation: Operation[R], clock: Clock, options: CallOptions | None = None
    ) -> Call[R]:
        if self.state.closed:
            raise KneoClientClosedError("the client is closed; create a new one")
        if options is None or options.observers is None:
            emitter = self._emitters.pick()
        else:
            emitter = self._emitters.for_observers(options.observers)
        merged = self.options if options is None else self.options.merged(options)
        return Call(
            operation, self.config, clock=clock, options=merged, budget=self.budget, emit=emitter
        )

    @functools.cached_property
    def _emitters(self) -> SessionEmitters:
        """The emitters of this session's calls, built once (logging is imported then)."""
        from kneo_client._observe import SessionEmitters

        return SessionEmitters(self.options.observers)


@dataclass(frozen=True)
class AsyncSession(_SessionBase):
    """Runs operations on an async driver."""

    driver: AsyncExecutor = None  # type: ignore[assignment]

    async def execute(
        self, operation: Operation[R], options: CallOptions | None = None
    ) -> Finished[R]:
        """Run ``operation`` to its end; return the ``Finished`` or raise a ``KneoError``.

        ``options`` override this session's for this one call.
        """
        return await self.driver.execute(self.call(operation, self.driver.clock, options))

    def with_options(self, options: CallOptions) -> AsyncSession:
        """Return a session sharing this one's driver, budget and state, with ``options``."""
        return AsyncSession(
            self.config, self.budget, self.options.merged(options), self.state, self.driver
        )


@dataclass(frozen=True)
class BlockingSession(_SessionBase):
    """Runs operations on a blocking driver."""

    driver: BlockingExecutor = None  # type: ignore[assignment]

    def execute(self, operation: Operation[R], options: CallOptions | None = None) -> Finished[R]:
        """Run ``operation`` to its end; return the ``Finished`` or raise a ``KneoError``.

        ``options`` override this session's for this one call.
        """
        return self.driver.execute(self.call(operation, self.driver.clock, options))

    def with_options(self, options: CallOptions) -> BlockingSession:
        """Return a session sharing this one's driver, budget and state, with ``options``."""
        return BlockingSession(
            self.config, self.budget, self.options.merged(options), self.state, self.driver
        )
