"""The sample specs every emulator starts with, so examples can run a spec by ID at once.

Each is written in the emulator's YAML subset (docs/emulator.md, "Spec format") and
registered under its name: ``my-spec``, ``support-triage``, ``nightly-report`` and
``always-fails``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SAMPLE_SPECS"]

SAMPLE_SPECS: Mapping[str, str] = {
    "my-spec": """\
name: my-spec
description: A minimal agent that thinks once and acts once.
steps:
  - name: think
    kind: model
    prompt: Decide what to do.
  - name: act
    kind: tool
    tool: http.get
""",
    "support-triage": """\
name: support-triage
description: Look up the customer, classify the ticket, and reply after a human approves.
steps:
  - name: lookup-customer
    kind: tool
    tool: crm.lookup
  - name: classify
    kind: model
    model: small
    prompt: Classify the ticket by urgency and topic.
  - name: approve-reply
    kind: human_review
    prompt: Approve the drafted reply before it is sent?
  - name: send-reply
    kind: tool
    tool: tickets.update
""",
    "nightly-report": """\
name: nightly-report
description: Query the warehouse, summarise the numbers and publish the report.
steps:
  - name: query
    kind: tool
    tool: warehouse.query
  - name: summarise
    kind: model
    prompt: Summarise yesterday's numbers in three sentences.
  - name: publish
    kind: tool
    tool: reports.publish
""",
    "always-fails": """\
name: always-fails
description: Fetches from an upstream service that always answers with an error.
steps:
  - name: fetch
    kind: tool
    tool: http.get
  - name: give-up
    kind: fail
    message: the upstream service answered 500
""",
}
