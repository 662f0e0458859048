"""Observers: where a call's events go (the user's observers, the log, OpenTelemetry).

``Call`` (the core) builds the events and hands them to the ``Observers`` of its client;
this module fans them out. An observer that raises never breaks the call: the first failure
of each observer is logged once (WARNING, with its traceback) and the call carries on.
Events hold no header, API key or proxy credential, so no observer can see one.

The log observer is attached to a call only while ``kneo_client.transport`` logs at INFO
or below, so a client without observers and without logging builds no event at all.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from kneo_client._log_events import log_event
from kneo_proto import AttemptStarted, Event, Observer, Profile

__all__ = [
    "Observers",
    "SessionEmitters",
    "checked_observers",
    "client_observers",
    "configure_logging",
]

logger = logging.getLogger("kneo_client.transport")
_root_logger = logging.getLogger("kneo_client")
# The observers already reported, by id, each with a reference to it: an id alone would be
# mistaken for a freed observer's once a new one takes its address (a weak reference, or the
# observer itself when it cannot have one, which keeps its id its own).
_warned: dict[int, Callable[[], object]] = {}
_warned_lock = threading.Lock()


class Observers:
    """The ``Emitter`` a call reports to: each event to every observer, safely."""

    __slots__ = ("_injectors", "_observers")

    def __init__(self, observers: Iterable[Observer]) -> None:
        self._observers = tuple(observers)
        self._injectors: tuple[Callable[[AttemptStarted], Iterable[tuple[str, str]]], ...] = tuple(
            injector
            for observer in self._observers
            if (injector := getattr(observer, "headers_for", None)) is not None
        )

    def emit(self, event: Event) -> None:
        """Give ``event`` to every observer; one that raises is reported once and skipped."""
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                _report_once(observer)

    def headers_for(self, event: AttemptStarted) -> list[tuple[str, str]]:
        """The headers the observers add to the attempt ``event`` announces."""
        pairs: list[tuple[str, str]] = []
        for injector in self._injectors:
            try:
                pairs.extend(injector(event))
            except Exception:
                _report_once(injector)
        return pairs

    def __repr__(self) -> str:
        return f"Observers({list(self._observers)!r})"


def _report_once(observer: object) -> None:
    owner = getattr(observer, "__self__", observer)
    key = id(owner)
    with _warned_lock:
        held = _warned.get(key)
        if held is not None and held() is owner:
            return
        try:
            _warned[key] = weakref.ref(owner, lambda ref: _forget(key, ref))
        except TypeError:  # no weak reference to it (a bound method of a list, say)
            _warned[key] = lambda: owner
    _root_logger.warning(
        "observer %r raised; the call went on (reported once per observer)",
        observer,
        exc_info=True,
    )


def _forget(key: int, ref: Callable[[], object]) -> None:
    """Drop the entry of a reported observer that was freed (unless a new one took it)."""
    if _warned.get(key) is ref:
        _warned.pop(key, None)


class SessionEmitters:
    """A session's two emitters (logging at INFO off, on), built once, and the choice."""

    __slots__ = ("_logging_on", "_off", "_on")

    def __init__(self, observers: tuple[Observer, ...] | None) -> None:
        self._off = Observers(observers) if observers else None
        self._on = Observers((*(observers or ()), log_event))
        self._logging_on = functools.partial(logger.isEnabledFor, logging.INFO)

    def pick(self) -> Observers | None:
        """The emitter for a call now: with the log observer while logging at INFO is on."""
        return self._on if self._logging_on() else self._off

    @staticmethod
    def for_observers(observers: tuple[Observer, ...]) -> Observers | None:
        """The emitter for a call whose options name their own ``observers``."""
        return SessionEmitters(observers).pick()


def client_observers(
    profile: Profile, observers: Iterable[Observer], tracing: bool | None
) -> tuple[Observer, ...]:
    """A client's observers: the caller's, and OpenTelemetry's when tracing is on and
    ``opentelemetry-api`` is installed. Also applies the profile's ``log`` setting.
    """
    configure_logging(profile.log)
    chosen = checked_observers(observers)
    if (profile.tracing if tracing is None else tracing) and _opentelemetry_installed():
        from kneo_client.otel import OpenTelemetryObserver

        chosen += (OpenTelemetryObserver(),)
    return chosen


def checked_observers(observers: Iterable[Observer]) -> tuple[Observer, ...]:
    """``observers`` as a tuple.

    Raises:
        TypeError: if one is not callable (refused before any call, not reported per event).
    """
    chosen = tuple(observers)
    for observer in chosen:
        if not callable(observer):
            raise TypeError(
                f"observers must be callables taking an event, not {type(observer).__name__}"
            )
    return chosen


def _opentelemetry_installed() -> bool:
    if "opentelemetry" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


_HANDLER_MARK = "_kneo_client_log_handler"


def configure_logging(level: str | None) -> None:
    """Write kneo-client's records at ``level`` and above to stderr (``KNEO_LOG``).

    Adds one handler to the ``kneo_client`` logger (never to the root logger), once per
    process however many clients ask; ``"off"`` removes it; None changes nothing.
    """
    if level is None:
        return
    handlers: list[Any] = [h for h in _root_logger.handlers if getattr(h, _HANDLER_MARK, False)]
    if level == "off":
        for handler in handlers:
            _root_logger.removeHandler(handler)
        return
    if not handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        setattr(handler, _HANDLER_MARK, True)
        _root_logger.addHandler(handler)
    _root_logger.setLevel(level.upper())
