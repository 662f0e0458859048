"""Schemathesis against the emulator: every operation of ``spec/`` answers as the spec says.

Schemathesis reads the pinned OpenAPI document, generates requests for each of its
operations (valid ones, and in its coverage phase invalid ones too) and sends them with the
full-access key to the emulator served on 127.0.0.1. Each response is checked for what the
emulator promises: no 5xx, a documented status, a documented content type and headers, and
a body that validates against the operation's response schema.

Checks about how a server should judge requests (schema-valid data accepted, invalid data
refused) are left out: the emulator, as the platform does, refuses some schema-valid
requests for reasons the schema cannot express (an empty ``spec_id``, an unknown run), and
answers them with a documented 4xx, which the conformance checks do verify.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kneo_client.testing import Emulator, RunningEmulator, serve_emulator
from tests.integration.commands import ROOT
from tests.support.spec import spec_operation_count

pytestmark = pytest.mark.timeout(60)

SCHEMA = schemathesis.openapi.from_path(ROOT / "spec" / "kneo-v1.openapi.yaml")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = spec_operation_count()  # every operation of the pinned spec


@pytest.fixture(scope="module")
def running() -> Iterator[RunningEmulator]:
    with serve_emulator(Emulator()) as running:
        yield running


def test_the_spec_declares_every_operation_this_file_checks() -> None:
    loaded = list(SCHEMA.get_all_operations())
    assert all(isinstance(result, Ok) for result in loaded)  # none failed to load
    assert len(loaded) == OPERATIONS


@SCHEMA.parametrize()
@settings(
    max_examples=5,
    derandomize=True,  # the same cases on every run: CI must not fail at random
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_the_spec_says(
    case: schemathesis.Case[Any], running: RunningEmulator
) -> None:
    auth = {"Authorization": f"Bearer {running.api_key}"}
    case.call_and_validate(base_url=running.url, headers=auth, checks=CHECKS)
