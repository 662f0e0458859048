"""Specs: validate, compile, explain, policy-check and dry-run agent specs (Studio's loop)."""

from __future__ import annotations

from kneo_proto._operation import Parts, endpoint
from kneo_proto.models import (
    RunCreateRequest,
    RunCreateRequestDict,
    RunCreateResponse,
    SpecCompileRequest,
    SpecCompileRequestDict,
    SpecCompileResponse,
    SpecExplainRequest,
    SpecExplainRequestDict,
    SpecExplainResponse,
    SpecPolicyReportRequest,
    SpecPolicyReportRequestDict,
    SpecPolicyReportResponse,
    SpecValidateRequest,
    SpecValidateRequestDict,
    SpecValidateResponse,
)

__all__ = ["compile_spec", "explain_spec", "run_spec", "spec_policy_report", "validate_spec"]


@endpoint("POST", "/v1/specs/validate", SpecValidateResponse, body=SpecValidateRequest)
def validate_spec(
    body: SpecValidateRequest | SpecValidateRequestDict, *, idempotency_key: str | None = None
) -> Parts:
    """Schema and semantic validation of a spec. ``POST /v1/specs/validate``.

    Args:
        body: ``{"spec": text}`` (JSON or YAML spec text), as a model or a dict
            (``SpecValidateRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        SpecValidateResponse: ``valid`` and diagnostics with line and column.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)


@endpoint("POST", "/v1/specs/compile", SpecCompileResponse, body=SpecCompileRequest)
def compile_spec(
    body: SpecCompileRequest | SpecCompileRequestDict, *, idempotency_key: str | None = None
) -> Parts:
    """Compile a spec to its runtime representation. ``POST /v1/specs/compile``.

    Args:
        body: ``{"spec": text}``, as a model or a dict (``SpecCompileRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        SpecCompileResponse: ``ok``, diagnostics and the compiled form.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)


@endpoint("POST", "/v1/specs/explain", SpecExplainResponse, body=SpecExplainRequest)
def explain_spec(
    body: SpecExplainRequest | SpecExplainRequestDict, *, idempotency_key: str | None = None
) -> Parts:
    """Human-readable summary of a spec. ``POST /v1/specs/explain``.

    Args:
        body: ``{"spec": text}``, as a model or a dict (``SpecExplainRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        SpecExplainResponse: the summary and its steps.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)


@endpoint("POST", "/v1/specs/policy-report", SpecPolicyReportResponse, body=SpecPolicyReportRequest)
def spec_policy_report(
    body: SpecPolicyReportRequest | SpecPolicyReportRequestDict,
    *,
    idempotency_key: str | None = None,
) -> Parts:
    """Preview the policy outcomes of a spec. ``POST /v1/specs/policy-report``.

    Args:
        body: ``{"spec": text, "environment": name}``, as a model or a dict
            (``SpecPolicyReportRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        SpecPolicyReportResponse: whether the spec may run there, and why.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)


@endpoint("POST", "/v1/specs/run", RunCreateResponse, body=RunCreateRequest)
def run_spec(
    body: RunCreateRequest | RunCreateRequestDict, *, idempotency_key: str | None = None
) -> Parts:
    """Ad-hoc dry run of an inline spec. ``POST /v1/specs/run``.

    Unlike ``create_run`` it takes the spec text itself rather than a spec reference.

    Args:
        body: ``{"spec": text, ...}``, as a model or a dict (``RunCreateRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        RunCreateResponse: the new run's ID and initial status.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)
