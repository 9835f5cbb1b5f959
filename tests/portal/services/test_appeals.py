"""Appeals: who may write and publish them, what may be published, and what revoking
an approval does to them."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealStatus,
    AuditEvent,
    Case,
    Clip,
    ClipVersion,
    Rendition,
    Role,
    User,
)
from portal.services.appeals import (
    get_public_appeal,
    publish_appeal,
    save_appeal,
    withdraw_appeal,
)
from portal.services.clips import APPROVAL_CHECKLIST, approve_version, revoke_approval
from portal.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tests.portal.conftest import csrf_token


@pytest.fixture
def approved(ready_clip: Clip, users: dict[Role, User]) -> ClipVersion:
    version = ready_clip.versions[0]
    approve_version(version, users[Role.SUPERVISOR], {key: True for key in APPROVAL_CHECKLIST})
    db.session.commit()
    return version


def _save(case: Case, user: User, version: ClipVersion, **changes: object) -> Appeal:
    fields: dict[str, object] = {
        "title": "Man wanted for a robbery on Main Street",
        "summary": "On March 3 a man threatened the cashier.\n\nHe left in a red car.",
        "question": "",
        "version_ids": [version.public_id],
    }
    fields.update(changes)
    appeal = save_appeal(case, user, **fields)  # type: ignore[arg-type]
    db.session.commit()
    return appeal


def test_appeal_is_written_and_published_by_a_coordinator(
    case: Case, approved: ClipVersion, users: dict[Role, User]
) -> None:
    coordinator = users[Role.COORDINATOR]
    appeal = _save(case, coordinator, approved)
    assert appeal.status == AppealStatus.DRAFT.value
    assert appeal.question == "Do you recognize this person?"
    with pytest.raises(NotFound):
        get_public_appeal(appeal.public_id)

    publish_appeal(appeal, coordinator)
    db.session.commit()
    assert get_public_appeal(appeal.public_id).id == appeal.id
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "appeal.publish")
    ).one()
    assert event.object_id == appeal.public_id
    assert event.details["renditions_digests"] == {
        approved.public_id: approved.active_approval.renditions_digest  # type: ignore[union-attr]
    }


@pytest.mark.parametrize(
    ("role", "may"),
    [
        (Role.COORDINATOR, True),
        (Role.SUPERVISOR, True),
        (Role.OFFICER, False),
        (Role.DETECTIVE, False),
        (Role.ADMIN, False),
    ],
)
def test_appeal_publishing_is_for_coordinators_and_supervisors(
    case: Case, approved: ClipVersion, users: dict[Role, User], role: Role, may: bool
) -> None:
    # The officer created the case and the detective is assigned to it: being a
    # member of the case does not let them publish it.
    appeal = _save(case, users[Role.COORDINATOR], approved)
    if may:
        publish_appeal(appeal, users[role])
        assert appeal.is_published
    else:
        with pytest.raises(PermissionDenied):
            publish_appeal(appeal, users[role])
        with pytest.raises(PermissionDenied):
            _save(case, users[role], approved)


def test_appeal_of_another_agency_cannot_be_touched(
    case: Case,
    approved: ClipVersion,
    users: dict[Role, User],
    other_agency: Agency,
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    appeal = _save(case, users[Role.COORDINATOR], approved)
    outsider = make_user(Role.COORDINATOR, Role.SUPERVISOR, agency_=other_agency)
    with pytest.raises(PermissionDenied):
        publish_appeal(appeal, outsider)
    with pytest.raises(PermissionDenied):
        _save(case, outsider, approved)


def test_appeal_shows_only_approved_versions_of_its_own_case(
    case: Case, ready_clip: Clip, approved: ClipVersion, users: dict[Role, User]
) -> None:
    coordinator = users[Role.COORDINATOR]
    unapproved = ClipVersion(
        clip=ready_clip, number=2, plan={}, created_by=users[Role.OFFICER], status="ready"
    )
    db.session.add(unapproved)
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        _save(case, coordinator, approved, version_ids=[approved.public_id, unapproved.public_id])
    assert refused.value.field == "versions"
    with pytest.raises(ValidationFailed):
        _save(case, coordinator, approved, version_ids=[])
    with pytest.raises(ValidationFailed):
        _save(case, coordinator, approved, version_ids=["not-a-version"])


@pytest.mark.parametrize("bad", ["\ud800", "a\u202eb", "x\x00y", ""])
def test_appeal_title_is_checked_like_every_text_field(
    case: Case, approved: ClipVersion, users: dict[Role, User], bad: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _save(case, users[Role.COORDINATOR], approved, title=bad)
    assert refused.value.field == "title"


def test_appeal_whose_renditions_changed_after_approval_cannot_be_published(
    case: Case, approved: ClipVersion, users: dict[Role, User]
) -> None:
    coordinator = users[Role.COORDINATOR]
    appeal = _save(case, coordinator, approved)
    rendition = (
        db.session.scalars(
            select(Rendition).where(
                Rendition.version_id == approved.id, Rendition.name == "web_480"
            )
        ).first()
        or approved.renditions[0]
    )
    rendition.sha256 = "0" * 64  # re-rendered behind the approval's back
    db.session.commit()
    with pytest.raises(Conflict, match="no longer approved"):
        publish_appeal(appeal, coordinator)
    assert not appeal.is_published


def test_published_appeal_whose_renditions_changed_is_no_longer_public(
    case: Case, approved: ClipVersion, users: dict[Role, User]
) -> None:
    appeal = _save(case, users[Role.COORDINATOR], approved)
    publish_appeal(appeal, users[Role.COORDINATOR])
    db.session.commit()
    approved.renditions[0].sha256 = "f" * 64
    db.session.commit()
    with pytest.raises(NotFound):
        get_public_appeal(appeal.public_id)


def test_revoking_the_approval_withdraws_the_appeal(
    case: Case, approved: ClipVersion, users: dict[Role, User]
) -> None:
    appeal = _save(case, users[Role.COORDINATOR], approved)
    publish_appeal(appeal, users[Role.COORDINATOR])
    db.session.commit()
    revoke_approval(approved, users[Role.SUPERVISOR], "A bystander's face is visible at 0:04.")
    db.session.refresh(appeal)
    assert appeal.status == AppealStatus.WITHDRAWN.value
    assert "bystander" in appeal.withdraw_reason
    with pytest.raises(NotFound):
        get_public_appeal(appeal.public_id)
    with pytest.raises(Conflict, match="no longer approved"):
        publish_appeal(appeal, users[Role.COORDINATOR])


def test_withdrawing_needs_a_reason_and_a_published_appeal(
    case: Case, approved: ClipVersion, users: dict[Role, User]
) -> None:
    coordinator = users[Role.COORDINATOR]
    appeal = _save(case, coordinator, approved)
    with pytest.raises(Conflict):
        withdraw_appeal(appeal, coordinator, "Suspect arrested.")
    publish_appeal(appeal, coordinator)
    with pytest.raises(ValidationFailed):
        withdraw_appeal(appeal, coordinator, "   ")
    withdraw_appeal(appeal, coordinator, "Suspect arrested.")
    assert appeal.status == AppealStatus.WITHDRAWN.value
    with pytest.raises(Conflict):
        withdraw_appeal(appeal, coordinator, "Withdrawn twice.")


def test_appeal_pages_publish_and_withdraw(
    app: Flask, case: Case, approved: ClipVersion, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(users[Role.COORDINATOR])
    path = f"/staff/cases/{case.public_id}/appeal"
    page = client.get(path)
    assert page.status_code == 200
    assert approved.public_id in page.get_data(as_text=True)
    token = csrf_token(client, path)
    response = client.post(
        path,
        data={
            "csrf_token": token,
            "title": "Wanted: robbery on Main Street",
            "question": "",
            "summary": "He left in a red car.",
            "versions": [approved.public_id],
        },
    )
    assert response.status_code == 302
    appeal = db.session.scalars(select(Appeal)).one()
    assert client.post(f"{path}/publish", data={"csrf_token": token}).status_code == 302
    db.session.refresh(appeal)
    assert appeal.is_published
    page = client.get(path).get_data(as_text=True)
    assert f"/appeals/{appeal.public_id}?via=qr" in page
    assert "<svg" in page
    response = client.post(f"{path}/withdraw", data={"csrf_token": token, "reason": "Solved."})
    assert response.status_code == 302
    db.session.refresh(appeal)
    assert appeal.status == AppealStatus.WITHDRAWN.value


def test_appeal_page_refuses_a_post_without_csrf(
    app: Flask, case: Case, approved: ClipVersion, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(users[Role.COORDINATOR])
    response = client.post(
        f"/staff/cases/{case.public_id}/appeal",
        data={"title": "x", "versions": [approved.public_id]},
    )
    assert response.status_code == 400
    assert db.session.scalars(select(Appeal)).first() is None
