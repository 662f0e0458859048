"""Logging helpers: loggers under ``kneo_client.*`` and header redaction."""

from __future__ import annotations

import logging

from kneo_proto import REDACTED, redact_headers

__all__ = ["REDACTED", "get_logger", "redact_headers"]


def get_logger(name: str = "kneo_client") -> logging.Logger:
    """Return a logger under the ``kneo_client`` hierarchy.

    Bare names such as ``"transport"`` become ``kneo_client.transport``; names already under
    ``kneo_client`` pass through unchanged.
    """
    if name == "kneo_client" or name.startswith("kneo_client."):
        return logging.getLogger(name)
    return logging.getLogger(f"kneo_client.{name}")
