"""The API against its own OpenAPI document, by schemathesis: every operation, with
data the document allows and data it refuses, sent by an officer's token to a case
the officer is a member of. No answer may be a 500, and every answer must have a
documented status, content type and body.

Hypothesis runs derandomized with a fixed number of examples, so CI sees the same
requests every time.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.extensions import db
from portal.models import Agency, Case, Clip, ClipVersion, Role, User
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from tests.portal.conftest import listed_appeal

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION_AND_MODE = 12
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# Public operations whose only input is the path parameter fixed by this test.
FIXED_ONLY = frozenset({"GET /public/appeals/{appeal_id}"})

# tus PATCH bodies are plain bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    """The app with its request rate limits out of the way: this test is about the
    document, and its hundreds of generated requests (some without valid
    credentials, by design of the negative mode) would otherwise be answered 429
    after the first thirty, hiding every answer it should check. The limits have
    their own tests (test_ratelimit.py)."""
    from dataclasses import replace

    from portal import create_app
    from tests.conftest import IsolatedClient

    app = create_app(
        replace(
            settings,
            rate_limit_auth_failures="100000 per minute",
            rate_limit_api="100000 per minute",
            rate_limit_tips="100000 per minute",
            rate_limit_receipts="100000 per minute",
            rate_limit_unproven="100000 per minute",
        )
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def run_operation(operation, mode, fixed: dict[str, str], headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    """Send the operation's generated cases; return how many were sent."""
    names = {p.name for p in operation.path_parameters}
    sent = 0

    @given(
        case=operation.as_strategy(
            generation_mode=mode,
            path_parameters={k: v for k, v in fixed.items() if k in names} or None,
        )
    )
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def check(case) -> None:  # type: ignore[no-untyped-def]
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        # An operation whose every input is fixed here and that takes no token (a
        # public appeal by its id) has nothing a negative case could get wrong.
        if mode is not schemathesis.GenerationMode.NEGATIVE or operation.label not in FIXED_ONLY:
            raise
    return sent


def test_api_conforms_to_its_openapi_document(
    app: Flask,
    agency: Agency,
    users: dict[Role, User],
    case: Case,
    capsys: pytest.CaptureFixture[str],
) -> None:
    officer = users[Role.OFFICER]
    clip = Clip(case=case, uploaded_by=officer, status="ready", original_key="x/original")
    version = ClipVersion(clip=clip, number=1, plan={}, created_by=officer, status="ready")
    db.session.add_all([clip, version])
    # The public operations get a published appeal and a tip of it to aim at; the
    # officer's token meets the staff's publication operations with 403, documented.
    appeal = listed_appeal(
        agency, officer, users[Role.SUPERVISOR], number="24-0999", title="Who is this?"
    )
    tip, _ = submit_tip(TipInput(body="I know him."), agency=agency, appeal=appeal)
    _, secret = create_api_token(officer)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    fixed = {
        "case_id": case.public_id,
        "clip_id": clip.public_id,
        "version_id": version.public_id,
        "name": "poster",
        "appeal_id": appeal.public_id,
        "number": tip.number,
    }

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    # Every documented operation but the document itself, tus, multipart and the
    # public ones included.
    assert len(labels) == 43
    assert {
        "POST /uploads",
        "HEAD /uploads/{upload_id}",
        "PATCH /uploads/{upload_id}",
        "DELETE /uploads/{upload_id}",
        "POST /cases/{case_id}/clips",
        "GET /public/appeals",
        "GET /public/appeals/{appeal_id}",
        "GET /public/challenges",
        "POST /public/appeals/{appeal_id}/tips",
        "POST /public/tips",
        "GET /public/tips/{number}/messages",
        "POST /public/tips/{number}/messages",
        "POST /appeals/{appeal_id}/publication",
        "DELETE /appeals/{appeal_id}/publication",
    } <= labels

    started = time.monotonic()
    sent = 0
    for operation in operations:
        for mode in MODES:
            sent += run_operation(operation, mode, fixed, headers)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nschemathesis: {sent} cases over {len(operations)} operations in {elapsed:.1f} s")
    # Hypothesis stops early only when an operation has fewer distinct cases to offer.
    assert sent >= 0.9 * EXAMPLES_PER_OPERATION_AND_MODE * len(operations) * len(MODES)


def test_tip_operations_conform_for_a_detective_of_the_case(
    app: Flask, users: dict[Role, User], case: Case
) -> None:
    """The operation test above sends an officer's token, which tips refuse (403):
    here the tip operations again, by a detective of the tip's case, so that their
    answers (the queue, a tip, triage with its 409, messages) are checked too."""
    from portal.services.tips import TipInput, submit_tip

    detective = users[Role.DETECTIVE]
    tip, _ = submit_tip(TipInput(body="A red van at <the> corner."), agency=case.agency)
    tip.case_id = case.id
    _, secret = create_api_token(detective)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/tips")
    ]
    assert {op.label for op in operations} == {
        "GET /tips",
        "GET /tips/{tip_id}",
        "PATCH /tips/{tip_id}",
        "POST /tips/{tip_id}/messages",
    }
    sent = 0
    for operation in operations:
        for mode in MODES:
            sent += run_operation(operation, mode, {"tip_id": tip.public_id}, headers)
    assert sent >= 0.9 * EXAMPLES_PER_OPERATION_AND_MODE * len(operations) * len(MODES)
