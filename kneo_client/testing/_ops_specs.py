"""Handlers of the spec endpoints: validate, compile, explain, policy-report and run.

Invariants: an invalid spec is a result, not an error (spec: validate's 200), except for
``run``, which cannot run it (422 with the diagnostics in ``error.details``); a successful
compile registers the spec under its name, which is its ``spec_id`` for ``create_run``; an
``environment`` adds that environment's policy verdicts as diagnostics.
"""

from __future__ import annotations

import msgspec

from kneo_client.testing._agent_specs import (
    AgentSpec,
    Analysis,
    analyze,
    describe,
    error,
    summarize,
)
from kneo_client.testing._ops_runs import start_run
from kneo_client.testing._platform import Platform
from kneo_client.testing._policies import evaluate
from kneo_client.testing._run_views import create_model
from kneo_client.testing._wire import ApiError, Context, Outcome, decode_body, json_outcome
from kneo_proto.models import (
    ERROR_CODE_VALIDATION_ERROR,
    Diagnostic,
    PolicyOutcome,
    RunCreateRequest,
    SpecCompileRequest,
    SpecCompileResponse,
    SpecExplainRequest,
    SpecExplainResponse,
    SpecExplainStep,
    SpecPolicyReportRequest,
    SpecPolicyReportResponse,
    SpecValidateRequest,
    SpecValidateResponse,
)

__all__ = ["compile_spec", "explain_spec", "run_spec", "spec_policy_report", "validate_spec"]

DEFAULT_REPORT_ENVIRONMENT = "dev"  # spec: SpecPolicyReportRequest.environment default


def _text(value: str | msgspec.UnsetType | None) -> str | None:
    return None if isinstance(value, msgspec.UnsetType) else value


def _failed(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def _outcomes(
    platform: Platform, spec: AgentSpec, environment: str
) -> tuple[list[PolicyOutcome], list[Diagnostic]]:
    """Return the policy verdicts on ``spec``, and a located error for each refusal."""
    policy = platform.policies.get(environment)
    if policy is None:
        known = ", ".join(sorted(platform.policies))
        message = f"unknown environment {environment!r}; known: {known}"
        return [], [error("unknown_environment", message)]
    outcomes = evaluate(policy, spec, platform.engine.timing.estimate(spec.steps))
    found = []
    for outcome in (o for o in outcomes if not o.allowed):
        message = f"{environment} policy, {outcome.rule}: {_text(outcome.message)}"
        found.append(error("policy_denied", message, *spec.name_at))
        if outcome.rule == "allowed_tools":
            for step in spec.steps:
                if step.tool is not None and not policy.allows_tool(step.tool):
                    message = f"the {environment} policy does not allow tool {step.tool}"
                    found.append(error("tool_not_allowed", message, step.line, step.column))
    return outcomes, found


def _checked(platform: Platform, text: str, fmt: str | None, environment: str | None) -> Analysis:
    analysis = analyze(text, fmt)
    if analysis.spec is None or environment is None:
        return analysis
    _, found = _outcomes(platform, analysis.spec, environment)
    diagnostics = analysis.diagnostics + found
    return Analysis(None if _failed(found) else analysis.spec, diagnostics)


def validate_spec(platform: Platform, ctx: Context) -> Outcome:
    """Check a spec's syntax and fields (and, with an environment, its policy)."""
    request = decode_body(ctx.body, SpecValidateRequest)
    analysis = _checked(platform, request.spec, _text(request.format), _text(request.environment))
    return json_outcome(SpecValidateResponse(valid=analysis.ok, diagnostics=analysis.diagnostics))


def compile_spec(platform: Platform, ctx: Context) -> Outcome:
    """Compile a spec and register it under its name (its ``spec_id``)."""
    request = decode_body(ctx.body, SpecCompileRequest)
    environment = _text(request.environment)
    analysis = _checked(platform, request.spec, _text(request.format), environment)
    if analysis.spec is None:
        return json_outcome(SpecCompileResponse(ok=False, diagnostics=analysis.diagnostics))
    spec = analysis.spec
    platform.specs[spec.name] = spec
    compiled = spec.compiled(platform.engine.timing.step_seconds)
    if environment is not None:
        compiled["environment"] = environment
    return json_outcome(
        SpecCompileResponse(
            ok=True, diagnostics=analysis.diagnostics, compiled=compiled, spec_id=spec.name
        )
    )


def explain_spec(platform: Platform, ctx: Context) -> Outcome:
    """Summarise a spec and say what each step does."""
    request = decode_body(ctx.body, SpecExplainRequest)
    environment = _text(request.environment)
    analysis = analyze(request.spec, _text(request.format))
    spec = analysis.spec
    if spec is None:
        summary = "The spec cannot be explained until its errors are fixed; see diagnostics."
        return json_outcome(
            SpecExplainResponse(summary=summary, steps=[], diagnostics=analysis.diagnostics)
        )
    summary = summarize(spec)
    policy = platform.policies.get(environment) if environment is not None else None
    if policy is not None and policy.require_human_review:
        summary += f" In {environment}, every run first pauses for a policy review."
    steps = [SpecExplainStep(name=s.name, description=describe(s), kind=s.kind) for s in spec.steps]
    return json_outcome(
        SpecExplainResponse(summary=summary, steps=steps, diagnostics=analysis.diagnostics)
    )


def spec_policy_report(platform: Platform, ctx: Context) -> Outcome:
    """Preview the verdict of every policy rule of an environment on a spec."""
    request = decode_body(ctx.body, SpecPolicyReportRequest)
    environment = _text(request.environment) or DEFAULT_REPORT_ENVIRONMENT
    analysis = analyze(request.spec, _text(request.format))
    outcomes: list[PolicyOutcome] = []
    diagnostics = list(analysis.diagnostics)
    if analysis.spec is not None:
        outcomes, found = _outcomes(platform, analysis.spec, environment)
        diagnostics += found
    allowed = analysis.spec is not None and bool(outcomes) and all(o.allowed for o in outcomes)
    return json_outcome(
        SpecPolicyReportResponse(
            environment=environment, allowed=allowed, outcomes=outcomes, diagnostics=diagnostics
        )
    )


def run_spec(platform: Platform, ctx: Context) -> Outcome:
    """Run inline spec text once, without registering it."""
    request = decode_body(ctx.body, RunCreateRequest)
    text = _text(request.spec)
    if not text:
        message = "spec (the spec text) is required; to run a registered spec, use POST /v1/runs"
        raise ApiError(422, ERROR_CODE_VALIDATION_ERROR, message, {"field": "spec"})
    analysis = analyze(text)
    if analysis.spec is None:
        diagnostics = [msgspec.to_builtins(d) for d in analysis.diagnostics]
        message = f"the spec has errors: {analysis.diagnostics[0].message}"
        raise ApiError(422, ERROR_CODE_VALIDATION_ERROR, message, {"diagnostics": diagnostics})
    spec_id = platform.new_id(f"{analysis.spec.name}.adhoc")
    return json_outcome(
        create_model(start_run(platform, ctx, analysis.spec, spec_id, request)), 201
    )
