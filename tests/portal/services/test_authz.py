"""Role combinations against case membership, with the answers written out by hand.

The expected answers below are not derived from ``ROLE_PERMISSIONS``: they are what
the design says each person may do. A second role must never widen what the first
one allows on cases the user does not work on: an officer who is also a supervisor
oversees every case as a supervisor (sees it, approves its versions) but edits,
uploads into and downloads originals of only their own cases.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Case, CaseAssignment, Clip, Role, User
from portal.models.base import utcnow
from portal.services.authz import Permission, can
from portal.services.users import create_api_token
from tests.portal.conftest import csrf_token, sign_in

OFF, DET, SUP, COORD, ADM = (
    Role.OFFICER,
    Role.DETECTIVE,
    Role.SUPERVISOR,
    Role.COORDINATOR,
    Role.ADMIN,
)
COMBINATIONS: list[tuple[Role, ...]] = [
    (OFF,),
    (DET,),
    (SUP,),
    (COORD,),
    (ADM,),
    (OFF, SUP),
    (DET, COORD),
    (OFF, ADM),
]

# Each cell: without a case | on a case the user is a member of | on a case of their
# agency they are not a member of | on a case of another agency.  Y allowed, . refused.
EXPECTED = """
permission         officer detective supervisor coordinator admin off+sup det+coord off+admin
case.view          YY..    YY..      YYY.       YYY.        YYY.  YYY.    YYY.      YYY.
case.create        YY..    YY..      ....       ....        ....  YY..    YY..      YY..
case.edit          YY..    YY..      ....       ....        ....  YY..    YY..      YY..
clip.upload        YY..    YY..      ....       ....        ....  YY..    YY..      YY..
clip.edit          YY..    YY..      ....       ....        ....  YY..    YY..      YY..
evidence.download  YY..    YY..      ....       ....        ....  YY..    YY..      YY..
version.approve    ....    ....      YYY.       ....        ....  YYY.    ....      ....
tip.triage         ....    YY..      YYY.       ....        ....  YYY.    YY..      ....
user.manage        ....    ....      ....       ....        YYY.  ....    ....      YYY.
audit.view         ....    ....      ....       ....        YYY.  ....    ....      YYY.
job.view           YY..    YY..      YYY.       ....        YYY.  YYY.    YY..      YYY.
evidence.delete    ....    ....      ....       ....        YYY.  ....    ....      YYY.
appeal.publish     ....    ....      YYY.       YYY.        ....  YYY.    YYY.      ....
post.manage        ....    ....      YYY.       YYY.        ....  YYY.    YYY.      ....
outcome.view       ....    ....      YYY.       YYY.        YYY.  YYY.    YYY.      YYY.
channel.manage     ....    ....      ....       ....        YYY.  ....    ....      YYY.
comment.moderate   ....    ....      YYY.       YYY.        ....  YYY.    YYY.      ....
"""
SITUATIONS = ("no case", "member", "non-member", "other agency")


def _table() -> list[tuple[tuple[Role, ...], Permission, str, bool]]:
    lines = [line.split() for line in EXPECTED.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    assert len(header) == len(COMBINATIONS)
    cases = []
    for permission, *cells in rows:
        assert len(cells) == len(COMBINATIONS), permission
        for roles, cell in zip(COMBINATIONS, cells, strict=True):
            for situation, mark in zip(SITUATIONS, cell, strict=True):
                cases.append((roles, Permission(permission), situation, mark == "Y"))
    return cases


TABLE = _table()


def test_table_covers_every_permission() -> None:
    assert {permission for _, permission, _, _ in TABLE} == set(Permission)


@pytest.fixture
def situations(
    agency: Agency, other_agency: Agency, make_user: Callable[..., User]
) -> Callable[[tuple[Role, ...]], tuple[User, dict[str, Case | None]]]:
    creator = make_user(OFF)
    stranger = make_user(OFF, agency_=other_agency, email="stranger@shelbyville.example")
    numbers = iter(range(1, 10_000))

    def new_case(of: Agency, by: User) -> Case:
        case = Case(
            agency=of, number=f"T-{next(numbers)}", title="A case", status="open", created_by=by
        )
        db.session.add(case)
        return case

    def build(roles: tuple[Role, ...]) -> tuple[User, dict[str, Case | None]]:
        user = make_user(*roles)
        member_case = new_case(agency, creator)
        member_case.assignments.append(CaseAssignment(user=user, assigned_at=utcnow()))
        other = new_case(other_agency, stranger)
        # Even a membership row on a foreign case does not open it.
        other.assignments.append(CaseAssignment(user=user, assigned_at=utcnow()))
        found = {
            "no case": None,
            "member": member_case,
            "non-member": new_case(agency, creator),
            "other agency": other,
        }
        db.session.commit()
        return user, found

    return build


@pytest.mark.parametrize("roles", COMBINATIONS, ids=lambda r: "+".join(x.value for x in r))
def test_can_matches_the_hand_written_table(
    situations: Callable[[tuple[Role, ...]], tuple[User, dict[str, Case | None]]],
    roles: tuple[Role, ...],
) -> None:
    user, found = situations(roles)
    wrong = [
        (permission.value, situation, expected)
        for combo, permission, situation, expected in TABLE
        if combo == roles and can(user, permission, found[situation]) is not expected
    ]
    assert wrong == []


def test_can_counts_the_creator_as_a_member(agency: Agency, make_user: Callable[..., User]) -> None:
    user = make_user(OFF, SUP)
    own = Case(agency=agency, number="OWN-1", title="Mine", status="open", created_by=user)
    db.session.add(own)
    db.session.commit()
    for permission in (Permission.CASE_EDIT, Permission.CLIP_UPLOAD, Permission.EVIDENCE_DOWNLOAD):
        assert can(user, permission, own)


# -- the same refusals through the staff pages and the API ------------------------------


@pytest.fixture
def overseer(make_user: Callable[..., User]) -> User:
    """An officer who is also a supervisor, and no member of the ``case`` fixture."""
    return make_user(OFF, SUP, email="officer.supervisor@springfield.example")


def test_staff_pages_refuse_a_non_member_officer_supervisor(
    app: Flask, case: Case, ready_clip: Clip, overseer: User
) -> None:
    client = app.test_client()
    assert sign_in(client, overseer.email).status_code == 302
    # What the supervisor role gives: the case and the clip are visible.
    assert client.get(f"/staff/cases/{case.public_id}").status_code == 200
    assert client.get(f"/staff/clips/{ready_clip.public_id}").status_code == 200
    headers = {"X-CSRFToken": csrf_token(client, "/staff/")}
    refused = {
        "edit page": client.get(f"/staff/cases/{case.public_id}/edit"),
        "edit": client.post(
            f"/staff/cases/{case.public_id}/edit",
            data={"csrf_token": headers["X-CSRFToken"], "number": "X", "title": "Changed"},
        ),
        "new version": client.post(
            f"/staff/clips/{ready_clip.public_id}/versions",
            json={"plan": {"audio": "strip"}},
            headers=headers,
        ),
        "attach upload": client.post(
            f"/staff/cases/{case.public_id}/clips", json={"upload_id": "x"}, headers=headers
        ),
        "tus upload": client.post(
            "/staff/uploads/",
            headers={
                **headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "1000",
                "Upload-Metadata": "case " + base64.b64encode(case.public_id.encode()).decode(),
            },
        ),
        "original": client.get(f"/staff/clips/{ready_clip.public_id}/original"),
    }
    statuses = {name: response.status_code for name, response in refused.items()}
    assert all(status in (403, 404) for status in statuses.values()), statuses
    db.session.refresh(case)
    assert case.title == "Robbery at the Kwik-E-Mart" and len(ready_clip.versions) == 1


def test_staff_pages_allow_the_same_user_on_their_own_case(
    app: Flask, case: Case, ready_clip: Clip, overseer: User
) -> None:
    case.assignments.append(CaseAssignment(user=overseer, assigned_at=utcnow()))
    db.session.commit()
    client = app.test_client()
    assert sign_in(client, overseer.email).status_code == 302
    assert client.get(f"/staff/cases/{case.public_id}/edit").status_code == 200
    assert client.get(f"/staff/clips/{ready_clip.public_id}/original").status_code == 200


def test_api_refuses_a_non_member_officer_supervisor(
    client: FlaskClient, case: Case, ready_clip: Clip, overseer: User
) -> None:
    _, secret = create_api_token(overseer)
    db.session.commit()
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1/cases/{case.public_id}", headers=auth).status_code == 200
    refused = {
        "edit": client.patch(
            f"/api/v1/cases/{case.public_id}", json={"title": "Changed"}, headers=auth
        ),
        "new version": client.post(
            f"/api/v1/clips/{ready_clip.public_id}/versions",
            json={"plan": {"audio": "strip"}},
            headers=auth,
        ),
        "attach upload": client.post(
            f"/api/v1/cases/{case.public_id}/clips", json={"upload_id": "x"}, headers=auth
        ),
        "multipart upload": client.post(
            f"/api/v1/cases/{case.public_id}/clips",
            data={"file": (io.BytesIO(b"\0" * 1000), "cam.mp4")},
            headers=auth,
        ),
        "tus upload": client.post(
            "/api/v1/uploads",
            headers={
                **auth,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "1000",
                "Upload-Metadata": "case " + base64.b64encode(case.public_id.encode()).decode(),
            },
        ),
    }
    statuses = {name: response.status_code for name, response in refused.items()}
    assert all(status in (403, 404) for status in statuses.values()), statuses
    db.session.refresh(case)
    assert case.title == "Robbery at the Kwik-E-Mart" and len(ready_clip.versions) == 1
