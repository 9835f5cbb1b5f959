"""The footage API from a script's point of view: cases, tus, clips, versions, approval."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Case, Role, User
from portal.services.users import create_api_token
from tests.portal.conftest import run_jobs


@pytest.fixture
def tokens(users: dict[Role, User]) -> dict[Role, dict[str, str]]:
    result = {}
    for role, user in users.items():
        _, secret = create_api_token(user)
        result[role] = {"Authorization": f"Bearer {secret}"}
    db.session.commit()
    return result


def test_api_case_create_list_get_patch(client: FlaskClient, tokens) -> None:  # type: ignore[no-untyped-def]
    officer = tokens[Role.OFFICER]
    response = client.post(
        "/api/v1/cases",
        json={
            "number": "24-77",
            "title": "Bike theft",
            "occurred_at": "2026-11-01T10:30:00",
            "latitude": 40.7,
            "longitude": -74.0,
        },
        headers=officer,
    )
    assert response.status_code == 201, response.json
    case = response.json
    assert case["occurred_at"] == "2026-11-01T10:30:00+00:00"
    assert response.headers["Location"].endswith(case["id"])
    listing = client.get("/api/v1/cases?q=bike", headers=officer).json
    assert [c["id"] for c in listing["cases"]] == [case["id"]]
    patched = client.patch(
        f"/api/v1/cases/{case['id']}", json={"title": "Bike theft (two bikes)"}, headers=officer
    )
    assert patched.status_code == 200 and patched.json["title"] == "Bike theft (two bikes)"
    got = client.get(f"/api/v1/cases/{case['id']}", headers=officer).json
    assert got["title"] == "Bike theft (two bikes)" and got["status"] == "open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "no number"}, "number"),
        ({"number": "1", "title": 5}, "title"),
        ({"number": "1", "title": "t", "latitude": 100, "longitude": 0}, "latitude"),
        ({"number": "1", "title": "t", "latitude": 10}, "longitude"),
        ({"number": "1", "title": "t", "occurred_at": "yesterday"}, "occurred_at"),
        ({"number": "1", "title": "t", "colour": "red"}, "colour"),
        ({"number": "1", "title": "t", "status": "solved"}, "status"),
        ({"number": "1", "title": "t" * 201}, "title"),
    ],
)
def test_api_case_bad_input_names_the_field(client: FlaskClient, tokens, body, field) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/cases", json=body, headers=tokens[Role.OFFICER])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field


def test_api_case_duplicate_number_conflicts(client: FlaskClient, tokens, case: Case) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/cases", json={"number": case.number, "title": "x"}, headers=tokens[Role.OFFICER]
    )
    assert response.status_code == 409 and response.json["field"] == "number"


def test_api_case_list_paginates_by_keyset(client: FlaskClient, tokens) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        client.post(
            "/api/v1/cases",
            json={"number": f"P-{n}", "title": f"Case {n}"},
            headers=tokens[Role.OFFICER],
        )
    first = client.get("/api/v1/cases?limit=2", headers=tokens[Role.OFFICER]).json
    second = client.get(
        f"/api/v1/cases?limit=2&after={first['next']}", headers=tokens[Role.OFFICER]
    ).json
    third = client.get(
        f"/api/v1/cases?limit=2&after={second['next']}", headers=tokens[Role.OFFICER]
    ).json
    numbers = [c["number"] for page in (first, second, third) for c in page["cases"]]
    assert numbers == ["P-4", "P-3", "P-2", "P-1", "P-0"]
    assert third["next"] is None
    bad = client.get("/api/v1/cases?after=nonsense", headers=tokens[Role.OFFICER])
    assert bad.status_code == 422 and bad.json["field"] == "after"


def test_api_case_of_another_officer_is_not_found(
    client: FlaskClient, tokens, case: Case, make_user
) -> None:  # type: ignore[no-untyped-def]
    outsider = make_user(Role.OFFICER)
    _, secret = create_api_token(outsider)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1/cases/{case.public_id}", headers=headers).status_code == 404
    assert (
        client.patch(
            f"/api/v1/cases/{case.public_id}", json={"title": "x"}, headers=headers
        ).status_code
        == 404
    )


def test_api_full_footage_flow_with_tus(
    client: FlaskClient,
    tokens,
    case: Case,
    sample_clip: Path,  # type: ignore[no-untyped-def]
) -> None:
    data = sample_clip.read_bytes()
    officer = tokens[Role.OFFICER]
    tus = {"Tus-Resumable": "1.0.0"}
    created = client.post(
        "/api/v1/uploads",
        headers={
            **officer,
            **tus,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename " + base64.b64encode(b"cam1.mp4").decode(),
        },
    )
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location.startswith("/api/v1/uploads/")
    half = len(data) // 2
    for offset, chunk in ((0, data[:half]), (half, data[half:])):
        response = client.patch(
            location,
            data=chunk,
            headers={
                **officer,
                **tus,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 204
    upload_id = location.rsplit("/", 1)[1]
    response = client.post(
        f"/api/v1/cases/{case.public_id}/clips", json={"upload_id": upload_id}, headers=officer
    )
    assert response.status_code == 201, response.json
    clip_id = response.json["clip"]["id"]
    assert response.json["clip"]["sha256"] == hashlib.sha256(data).hexdigest()
    run_jobs()
    clip = client.get(f"/api/v1/clips/{clip_id}", headers=officer).json
    assert clip["clip"]["status"] == "ready"
    assert clip["clip"]["probe"]["video"]["codec"] == "h264"
    version1 = clip["versions"][0]
    poster = next(r for r in version1["renditions"] if r["name"] == "poster")
    image = client.get(poster["url"], headers=officer)
    assert image.status_code == 200 and hashlib.sha256(image.data).hexdigest() == poster["sha256"]

    edit = client.post(
        f"/api/v1/clips/{clip_id}/versions",
        json={"plan": {"blur": [{"x": 0, "y": 0, "width": 50, "height": 50}]}},
        headers=tokens[Role.DETECTIVE],
    )
    assert edit.status_code == 201 and edit.json["number"] == 2
    run_jobs()
    version2 = edit.json["id"]
    approval_url = f"/api/v1/versions/{version2}/approval"
    checklist = {"bystanders_blurred": True, "no_juveniles": True, "investigation_safe": True}
    refused = client.post(approval_url, json={"checklist": checklist}, headers=officer)
    assert refused.status_code == 403
    approved = client.post(
        approval_url, json={"checklist": checklist}, headers=tokens[Role.SUPERVISOR]
    )
    assert approved.status_code == 201 and len(approved.json["renditions_digest"]) == 64
    again = client.post(
        approval_url, json={"checklist": checklist}, headers=tokens[Role.SUPERVISOR]
    )
    assert again.status_code == 409
    no_reason = client.delete(approval_url, headers=tokens[Role.SUPERVISOR])
    assert no_reason.status_code == 422
    revoked = client.delete(
        approval_url, json={"reason": "plate visible"}, headers=tokens[Role.SUPERVISOR]
    )
    assert revoked.status_code == 204


def test_api_small_file_as_multipart(
    client: FlaskClient, tokens, case: Case, sample_clip: Path
) -> None:  # type: ignore[no-untyped-def]
    data = sample_clip.read_bytes()
    response = client.post(
        f"/api/v1/cases/{case.public_id}/clips",
        data={"file": (io.BytesIO(data), "phone.mp4")},
        headers=tokens[Role.DETECTIVE],
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    assert response.json["clip"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert response.json["clip"]["filename"] == "phone.mp4"


def test_api_clip_attach_without_upload_id(client: FlaskClient, tokens, case: Case) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        f"/api/v1/cases/{case.public_id}/clips", json={}, headers=tokens[Role.OFFICER]
    )
    assert response.status_code == 422 and response.json["field"] == "upload_id"
