"""Every /v1 endpoint, declared once as a typed builder (``Endpoint``).

Call a builder with the endpoint's arguments to get an ``Operation``; run it with a
``Call``. ``ALL`` lists every builder in declaration order; the facades bind these same
objects, and the contract test proves they match ``spec/`` both ways.
"""

from kneo_proto._operation import ENDPOINTS as ALL
from kneo_proto.endpoints.audit import list_audit_events
from kneo_proto.endpoints.credentials import list_credentials
from kneo_proto.endpoints.health import healthz, livez, readyz
from kneo_proto.endpoints.human_tasks import get_human_task, list_human_tasks, resume_human_task
from kneo_proto.endpoints.policies import (
    get_environment_policy,
    list_environment_policies,
    put_environment_policy,
)
from kneo_proto.endpoints.runs import (
    cancel_run,
    continue_run,
    create_run,
    diff_run_checkpoints,
    get_run,
    get_run_policy_report,
    get_run_recovery,
    get_run_trace,
    list_run_checkpoints,
    list_runs,
    replay_run,
)
from kneo_proto.endpoints.specs import (
    compile_spec,
    explain_spec,
    run_spec,
    spec_policy_report,
    validate_spec,
)

__all__ = [
    "ALL",
    "cancel_run",
    "compile_spec",
    "continue_run",
    "create_run",
    "diff_run_checkpoints",
    "explain_spec",
    "get_environment_policy",
    "get_human_task",
    "get_run",
    "get_run_policy_report",
    "get_run_recovery",
    "get_run_trace",
    "healthz",
    "list_audit_events",
    "list_credentials",
    "list_environment_policies",
    "list_human_tasks",
    "list_run_checkpoints",
    "list_runs",
    "livez",
    "put_environment_policy",
    "readyz",
    "replay_run",
    "resume_human_task",
    "run_spec",
    "spec_policy_report",
    "validate_spec",
]
