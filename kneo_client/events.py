"""What happened during a call: the events observers receive (``observers=[...]``).

See docs/usage.md, "Observability". Every event has ``call`` (a ``CallInfo``) and ``at``;
none holds a header, the API key or a proxy credential.
"""

from kneo_proto import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    CallInfo,
    CallStarted,
    Event,
    Observer,
    ResponseReceived,
    RetryScheduled,
)

__all__ = [
    "AttemptFailed",
    "AttemptStarted",
    "CallFailed",
    "CallFinished",
    "CallInfo",
    "CallStarted",
    "Event",
    "Observer",
    "ResponseReceived",
    "RetryScheduled",
]
