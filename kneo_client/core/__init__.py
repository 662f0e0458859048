"""The cross-cutting layer: transport, profiles, auth, retries, idempotency, pagination,
request IDs, redacted logging and errors. Each module is a stable import path.
"""
