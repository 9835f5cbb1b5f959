"""Every staff route and API operation, tried with every role and with no sign-in.

The expectation comes from the permission each view declares, so a new view is in
the matrix without editing this file; a view that declares none must be in the
short list of views every signed-in person may open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.http import ratelimit
from portal.models import (
    Agency,
    AttachmentStatus,
    AuditEvent,
    Case,
    Clip,
    RedactionProposal,
    Role,
    Tip,
    TipAttachment,
    User,
)
from portal.models.base import utcnow
from portal.publishing.models import Post
from portal.services.authz import ROLE_PERMISSIONS, Permission, can
from portal.services.cases import create_case
from portal.services.storage import get_store
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from portal.staff import ANONYMOUS_ENDPOINTS
from tests.portal.conftest import sign_in

# Views with no permission of their own: any signed-in staff member may open them.
OPEN_TO_ALL_STAFF = {
    "staff.dashboard",
    "staff.logout",
    "staff.login",
    "staff.login_mfa",
    "staff.account",
    "staff.account_mfa",
    "staff.account_tokens",
}


# GET pages that only answer after a step this walk does not take, with what a user
# allowed on them gets without it.
NEEDS_A_PRIOR_STEP = {
    # The network's redirect back: only after this session started a connection.
    "staff.channel_oauth_callback": 400,
}


def staff_get_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and "GET" in (rule.methods or set()):
            routes.append((rule.endpoint, rule.rule))
    return sorted(routes)


def fill(
    rule: str,
    case: Case,
    clip: Clip | None = None,
    tip: Tip | None = None,
    post: Post | None = None,
    proposal: RedactionProposal | None = None,
) -> str:
    """A real URL for a rule: the case's and its clip's ids, version 1's poster, a tip
    on the case, a post of the agency, a face search on the clip."""
    values = {
        "<public_id>": case.public_id,
        "<case_id>": case.public_id,
        "<network>": "facebook",
        "<action>": "hide",
    }
    if post is not None:
        values["<post_id>"] = post.public_id
    if proposal is not None:
        values["<proposal_id>"] = proposal.public_id
    if tip is not None:
        values["<tip_id>"] = tip.public_id
        if tip.attachments:
            values["<attachment_id>"] = tip.attachments[0].public_id
    if clip is not None:
        values |= {
            "<clip_id>": clip.public_id,
            "<version_id>": clip.versions[0].public_id,
            "<name>": "poster",
        }
    for placeholder, value in values.items():
        rule = rule.replace(placeholder, value)
    assert "<" not in rule, f"no value for a parameter of {rule}"
    return rule


@pytest.fixture
def agency_post(case: Case, users: dict[Role, User]) -> Post:
    """A draft post of the agency for tomorrow (rows only)."""
    post = Post(
        agency_id=case.agency_id,
        slot_at=utcnow() + timedelta(days=1),
        created_by_id=users[Role.COORDINATOR].id,
    )
    db.session.add(post)
    db.session.commit()
    return post


@pytest.fixture
def clip_proposal(ready_clip: Clip, users: dict[Role, User]) -> RedactionProposal:
    """A finished face search on the clip (rows only)."""
    proposal = RedactionProposal(
        clip=ready_clip, kind="faces", requested_by=users[Role.OFFICER], status="ready"
    )
    db.session.add(proposal)
    db.session.commit()
    return proposal


@pytest.fixture
def case_tip(case: Case, tmp_path: Path) -> Tip:
    """A tip on the case with one processed photo (its original and derivative stored)."""
    tip, _ = submit_tip(TipInput(body="I know him."), agency=case.agency)
    tip.case_id = case.id
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo")
    store = get_store()
    attachment = TipAttachment(
        agency_id=case.agency_id,
        tip=tip,
        status=AttachmentStatus.READY.value,
        format="jpeg",
        kind="image",
        size=photo.stat().st_size,
    )
    db.session.add(attachment)
    db.session.flush()
    attachment.original_key = f"tips/{tip.public_id}/attachments/{attachment.public_id}/original"
    attachment.derivative_key = f"tips/{tip.public_id}/attachments/{attachment.public_id}/view.jpg"
    for key in (attachment.original_key, attachment.derivative_key):
        stored = store.put_file(key, photo, "image/jpeg")
    attachment.sha256 = attachment.derivative_sha256 = stored.sha256
    attachment.derivative_type, attachment.derivative_size = "image/jpeg", stored.size
    db.session.commit()
    return tip


def test_every_staff_view_declares_a_permission_or_is_listed(app: Flask) -> None:
    for endpoint, _ in staff_get_routes(app):
        view = app.view_functions[endpoint]
        assert hasattr(view, "required_permission") or endpoint in OPEN_TO_ALL_STAFF, endpoint


@pytest.mark.parametrize("role", list(Role))
def test_staff_routes_by_role(
    app: Flask,
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    ready_clip: Clip,
    case_tip: Tip,
    agency_post: Post,
    clip_proposal: RedactionProposal,
    role: Role,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[role])
    for endpoint, rule in staff_get_routes(app):
        if endpoint in ANONYMOUS_ENDPOINTS:  # sign-in steps: a signed-in user is sent on
            continue
        permission = getattr(app.view_functions[endpoint], "required_permission", None)
        allowed = permission is None or permission in ROLE_PERMISSIONS[role]
        response = client.get(fill(rule, case, ready_clip, case_tip, agency_post, clip_proposal))
        expected = NEEDS_A_PRIOR_STEP.get(endpoint, 200) if allowed else 403
        assert response.status_code == expected, (role, rule, response.status_code)
        if not allowed:
            event = db.session.scalar(
                select(AuditEvent)
                .where(AuditEvent.action == "authz.denied")
                .order_by(AuditEvent.id.desc())
            )
            assert event is not None and event.actor_id == users[role].id


def test_staff_routes_without_sign_in_redirect_to_login(
    app: Flask,
    client: FlaskClient,
    case: Case,
    ready_clip: Clip,
    case_tip: Tip,
    agency_post: Post,
    clip_proposal: RedactionProposal,
) -> None:
    for endpoint, rule in staff_get_routes(app):
        if endpoint == "staff.login":
            continue
        # The walk sends more requests without a session than a minute's budget allows
        # one client (the budget itself is tested in tests/portal/http/test_ratelimit.py).
        ratelimit.limiter.reset()
        response = client.get(fill(rule, case, ready_clip, case_tip, agency_post, clip_proposal))
        assert response.status_code == 302, rule
        assert "/staff/login" in response.headers["Location"]


def test_case_of_another_agency_is_not_found(
    app: Flask,
    users: dict[Role, User],
    other_agency: Agency,
    make_user: Callable[..., User],
) -> None:
    stranger = make_user(Role.OFFICER, agency_=other_agency)
    foreign = create_case(other_agency, number="1", title="Elsewhere", created_by=stranger)
    db.session.commit()
    for role in (Role.SUPERVISOR, Role.ADMIN):
        client = app.test_client()
        assert sign_in(client, users[role].email).status_code == 302
        assert client.get(f"/staff/cases/{foreign.public_id}").status_code == 404


def test_case_of_the_same_agency_needs_membership_for_officers(
    client: FlaskClient,
    case: Case,
    make_user: Callable[..., User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    outsider = make_user(Role.OFFICER)
    signed_in(outsider)
    assert client.get(f"/staff/cases/{case.public_id}").status_code == 404
    assert not can(outsider, Permission.CASE_VIEW, case)


def test_can_denies_by_default(users: dict[Role, User], case: Case) -> None:
    assert not can(None, Permission.CASE_VIEW)
    assert not can(users[Role.ADMIN], Permission.CASE_VIEW, object())
    users[Role.ADMIN].is_disabled = True
    assert not can(users[Role.ADMIN], Permission.CASE_VIEW, case)


API_OPERATIONS = [("GET", "/api/v1/me"), ("GET", "/api/v1/tokens"), ("GET", "/api/v1/audit/verify")]


def api_permission(app: Flask, method: str, path: str) -> Permission | None:
    endpoint, _ = app.url_map.bind("localhost").match(path, method=method)
    return getattr(app.view_functions[endpoint], "required_permission", None)


@pytest.mark.parametrize("role", list(Role))
def test_api_operations_by_role(
    app: Flask, client: FlaskClient, users: dict[Role, User], role: Role
) -> None:
    _, secret = create_api_token(users[role])
    db.session.commit()
    for method, path in API_OPERATIONS:
        permission = api_permission(app, method, path)
        allowed = permission is None or permission in ROLE_PERMISSIONS[role]
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == (200 if allowed else 403), (role, path)


def test_api_operations_without_token_are_unauthorized(client: FlaskClient) -> None:
    for method, path in API_OPERATIONS:
        response = client.open(path, method=method)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
