"""Request-ID helpers: every request carries an ``X-Request-ID``."""

from kneo_proto import REQUEST_ID_HEADER, generate_request_id

__all__ = ["REQUEST_ID_HEADER", "generate_request_id"]
