"""Every staff route and API operation, every method, every role, run from outside
through HTTP: with the ids of a case the role may see, and with another agency's ids.

What each route needs comes from the permission its view declares; a route that
declares none must be in ``SELF_SERVICE`` (signing in and out, one's own account).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.api.public import PUBLIC_ENDPOINTS
from portal.extensions import db
from portal.models import Agency, Appeal, Case, Clip, ClipVersion, Role, Tip, User
from portal.models.base import utcnow
from portal.publishing.models import Channel, ChannelStatus, Post
from portal.services.authz import ROLE_PERMISSIONS
from portal.services.cases import create_case
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from tests.portal.conftest import csrf_token

# Routes about the signed-in person themselves, tested on their own: driving them
# blindly here would sign the matrix's user out or change their second factor.
SELF_SERVICE = re.compile(r"^staff\.(login|logout|account)|^api\.(me|list_tokens|openapi)$")
METHODS = ("GET", "POST", "PATCH", "DELETE", "HEAD")


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    method: str


def routes(app: Flask) -> Iterator[Route]:
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("staff.", "api.")) or SELF_SERVICE.match(rule.endpoint):
            continue
        if rule.endpoint in PUBLIC_ENDPOINTS:  # the API's public audience: no account
            continue
        for method in sorted((rule.methods or set()) & set(METHODS)):
            # HEAD is answered by GET views; only tus declares it on its own.
            if method == "HEAD" and "GET" in (rule.methods or set()):
                continue
            yield Route(rule.endpoint, rule.rule, method)


def url(
    rule: str,
    case: Case,
    clip: Clip,
    version: ClipVersion,
    tip: Tip,
    appeal: Appeal,
    channel: Channel,
    post: Post,
) -> str:
    values = {
        "channel_id": channel.public_id,
        "appeal_id": appeal.public_id,
        "post_id": post.public_id,
        # Not an agency's object: every agency writes captions for the same networks.
        "network": "mastodon",
        "case_id": case.public_id,
        "clip_id": clip.public_id,
        "version_id": version.public_id,
        "tip_id": tip.public_id,
        "name": "poster",
        "upload_id": "not-an-upload",
        "attachment_id": "not-an-attachment",
        "delivery_id": "not-a-delivery",
        "proposal_id": "not-a-proposal",
        # A public comment's action: the tip is a form tip, so it is refused whoever asks.
        "action": "hide",
    }
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule)
    return path


def tip_on(case: Case) -> Tip:
    tip, _ = submit_tip(TipInput(body="I know him."), agency=case.agency)
    tip.case_id = case.id
    db.session.commit()
    return tip


def appeal_on(case: Case, owner: User) -> Appeal:
    appeal = Appeal(agency_id=case.agency_id, case=case, created_by=owner, title="Who is this?")
    db.session.add(appeal)
    db.session.commit()
    return appeal


def channel_of(agency: Agency) -> Channel:
    """A disconnected channel: testing it is refused before any network is called."""
    channel = Channel(
        agency_id=agency.id,
        network="facebook",
        name="Page",
        settings={},
        status=ChannelStatus.DISCONNECTED.value,
    )
    db.session.add(channel)
    db.session.commit()
    return channel


def post_on(agency_id: int, owner: User) -> Post:
    """A draft post of the agency (rows only): what the post operations act on."""
    post = Post(agency_id=agency_id, slot_at=utcnow() + timedelta(days=1), created_by_id=owner.id)
    db.session.add(post)
    db.session.commit()
    return post


def foreign_clip(
    agency: Agency, owner: User
) -> tuple[Case, Clip, ClipVersion, Tip, Appeal, Channel, Post]:
    """Another agency's case with a clip, a version and a tip: rows only, since every
    route must refuse before it touches storage."""
    case = create_case(agency, number="F-1", title="Foreign", created_by=owner)
    clip = Clip(case=case, uploaded_by=owner, status="ready", original_key="x/original")
    version = ClipVersion(clip=clip, number=1, plan={}, created_by=owner, status="ready")
    db.session.add_all([clip, version])
    db.session.commit()
    return (
        case,
        clip,
        version,
        tip_on(case),
        appeal_on(case, owner),
        channel_of(agency),
        post_on(agency.id, owner),
    )


def request(client: FlaskClient, route: Route, path: str, auth: dict[str, str]):  # type: ignore[no-untyped-def]
    headers = {**auth, "Tus-Resumable": "1.0.0"}
    if route.endpoint.startswith("api."):
        body = {"json": {}} if route.method in ("POST", "PATCH", "DELETE") else {}
    else:
        body = {"data": {"csrf_token": auth.get("X-CSRFToken", "")}}
        if route.method in ("GET", "HEAD"):
            body = {}
    return client.open(path, method=route.method, headers=headers, **body)


@pytest.mark.parametrize("role", list(Role))
def test_every_route_by_role_with_own_and_foreign_ids(
    app: Flask,
    users: dict[Role, User],
    case: Case,
    ready_clip: Clip,
    other_agency: Agency,
    make_user: Callable[..., User],
    role: Role,
) -> None:
    user = users[role]
    stranger = make_user(Role.OFFICER, agency_=other_agency)
    foreign = foreign_clip(other_agency, stranger)
    own = (
        case,
        ready_clip,
        ready_clip.versions[0],
        tip_on(case),
        appeal_on(case, users[Role.OFFICER]),
        channel_of(case.agency),
        post_on(case.agency_id, users[Role.COORDINATOR]),
    )

    staff = app.test_client()
    response = staff.post(
        "/staff/login",
        data={
            "email": user.email,
            "password": "correct horse battery staple",
            "csrf_token": csrf_token(staff, "/staff/login"),
        },
    )
    assert response.status_code == 302
    staff_auth = {"X-CSRFToken": csrf_token(staff, "/staff/")}
    _, secret = create_api_token(user)
    db.session.commit()
    api = app.test_client()
    api_auth = {"Authorization": f"Bearer {secret}"}

    checked = 0
    for route in routes(app):
        client, auth = (api, api_auth) if route.endpoint.startswith("api.") else (staff, staff_auth)
        permission = getattr(app.view_functions[route.endpoint], "required_permission", None)
        assert permission is not None, f"{route.endpoint} declares no permission"
        allowed = permission in ROLE_PERMISSIONS[role]
        where = (role.value, route.method, route.rule)

        response = request(client, route, url(route.rule, *own), auth)
        if allowed:
            assert response.status_code not in (401, 403, 500), (*where, response.status_code)
        else:
            assert response.status_code == 403, (*where, response.status_code)

        # A network's name is no agency's object: nothing foreign to try there.
        if "<" in route.rule and not any(k in route.rule for k in ("upload_id", "<network>")):
            response = request(client, route, url(route.rule, *foreign), auth)
            expected = (404,) if allowed else (403,)
            assert response.status_code in expected, ("foreign", *where, response.status_code)
        checked += 1
    assert checked > 30  # the matrix really walked the routes
