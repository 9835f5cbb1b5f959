"""Hostile and malformed requests to the API: every one answers 400 or 422 with a
problem document naming the offending input, never a 500, and nothing already
stored changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Appeal, Case, Clip, ClipVersion, Role, Tip, User
from portal.models.base import utcnow
from portal.publishing.models import Post
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from tests.portal.conftest import listed_appeal


def bearer(user: User) -> dict[str, str]:
    _, secret = create_api_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def version(case: Case, users: dict[Role, User]) -> ClipVersion:
    """A clip and a rendered version as rows: the body is refused before anything
    would read the files."""
    officer = users[Role.OFFICER]
    clip = Clip(case=case, uploaded_by=officer, status="ready", original_key="x/original")
    version = ClipVersion(clip=clip, number=1, plan={}, created_by=officer, status="ready")
    db.session.add_all([clip, version])
    db.session.commit()
    return version


@pytest.fixture
def appeal(case: Case, users: dict[Role, User]) -> Appeal:
    return listed_appeal(
        case.agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="24-0200", title="Who?"
    )


@pytest.fixture
def tip(case: Case) -> tuple[Tip, str]:
    tip, receipt = submit_tip(TipInput(body="The red van again."), agency=case.agency)
    tip.case_id = case.id
    db.session.commit()
    return tip, receipt.passphrase


@pytest.fixture
def ids(
    case: Case, version: ClipVersion, appeal: Appeal, tip: tuple[Tip, str], users: dict[Role, User]
) -> dict[str, str]:
    tip, passphrase = tip
    post = Post(
        agency_id=case.agency_id,
        slot_at=utcnow() + timedelta(days=1),
        created_by_id=users[Role.COORDINATOR].id,
    )
    db.session.add(post)
    db.session.commit()
    return {
        "post": post.public_id,
        "passphrase": passphrase,
        "case": case.public_id,
        "clip": version.clip.public_id,
        "version": version.public_id,
        "appeal": appeal.public_id,
        "tip": tip.public_id,
        "number": tip.number,
    }


def json_operations(ids: dict[str, str]) -> list[tuple[str, str, Role | None]]:
    """Every operation with a JSON body, and a role that may call it on these ids
    (``None``: the public operations, called without a token)."""
    return [
        ("POST", "/api/v1/cases", Role.OFFICER),
        ("PATCH", f"/api/v1/cases/{ids['case']}", Role.OFFICER),
        ("POST", f"/api/v1/cases/{ids['case']}/clips", Role.OFFICER),
        ("POST", f"/api/v1/cases/{ids['case']}/solve", Role.OFFICER),
        ("POST", f"/api/v1/cases/{ids['case']}/status", Role.OFFICER),
        ("POST", f"/api/v1/clips/{ids['clip']}/versions", Role.OFFICER),
        ("POST", f"/api/v1/versions/{ids['version']}/approval", Role.SUPERVISOR),
        ("DELETE", f"/api/v1/versions/{ids['version']}/approval", Role.SUPERVISOR),
        ("DELETE", f"/api/v1/appeals/{ids['appeal']}/publication", Role.COORDINATOR),
        ("PATCH", f"/api/v1/tips/{ids['tip']}", Role.DETECTIVE),
        ("POST", f"/api/v1/tips/{ids['tip']}/messages", Role.DETECTIVE),
        ("POST", "/api/v1/posts", Role.COORDINATOR),
        ("PATCH", f"/api/v1/posts/{ids['post']}", Role.COORDINATOR),
        ("POST", f"/api/v1/public/appeals/{ids['appeal']}/tips", None),
        ("POST", "/api/v1/public/tips", None),
        ("POST", f"/api/v1/public/tips/{ids['number']}/messages", None),
    ]


def auth(users: dict[Role, User], role: Role | None, ids: dict[str, str]) -> dict[str, str]:
    """A token for staff operations; the tip's passphrase (a header) for public ones."""
    return bearer(users[role]) if role is not None else {"X-Tip-Passphrase": ids["passphrase"]}


def assert_problem(response, status: int, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    assert response.json["field"] == field


def test_api_every_json_operation_the_openapi_document_lists_is_tested(
    client: FlaskClient, ids: dict[str, str]
) -> None:
    document = client.get("/api/v1/openapi.json").json
    with_json = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert with_json == {
        ("POST", "/cases"),
        ("PATCH", "/cases/{case_id}"),
        ("POST", "/cases/{case_id}/clips"),
        ("POST", "/cases/{case_id}/solve"),
        ("POST", "/cases/{case_id}/status"),
        ("POST", "/clips/{clip_id}/versions"),
        ("POST", "/versions/{version_id}/approval"),
        ("DELETE", "/versions/{version_id}/approval"),
        ("DELETE", "/appeals/{appeal_id}/publication"),
        ("PATCH", "/tips/{tip_id}"),
        ("POST", "/tips/{tip_id}/messages"),
        ("POST", "/posts"),
        ("PATCH", "/posts/{post_id}"),
        ("POST", "/public/appeals/{appeal_id}/tips"),
        ("POST", "/public/tips"),
        ("POST", "/public/tips/{number}/messages"),
    }
    assert len(json_operations(ids)) == len(with_json)


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null", "true", "[1, 2]"])
def test_api_non_object_json_body_is_422_on_every_operation(
    client: FlaskClient, users: dict[Role, User], ids: dict[str, str], body: str
) -> None:
    for method, path, role in json_operations(ids):
        response = client.open(
            path,
            method=method,
            data=body,
            content_type="application/json",
            headers=auth(users, role, ids),
        )
        assert_problem(response, 422, "body")
        assert response.json["title"] == "The body must be a JSON object.", (method, path)


def test_api_json_nested_200000_deep_is_400(
    client: FlaskClient, users: dict[Role, User], ids: dict[str, str], version: ClipVersion
) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    for method, path, role in json_operations(ids):
        response = client.open(
            path,
            method=method,
            data=deep,
            content_type="application/json",
            headers=auth(users, role, ids),
        )
        assert_problem(response, 400, "body")
        assert "nested too deeply" in response.json["title"]
    nested_object = '{"plan": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001
    response = client.post(
        f"/api/v1/clips/{version.clip.public_id}/versions",
        data=nested_object,
        content_type="application/json",
        headers=bearer(users[Role.OFFICER]),
    )
    assert_problem(response, 400, "body")


@pytest.mark.parametrize("body", ['{"number": "1", "title": ', "{'single': 1}", "\xff\xfe", "NaN]"])
def test_api_invalid_json_is_400(client: FlaskClient, users: dict[Role, User], body: str) -> None:
    response = client.post(
        "/api/v1/cases",
        data=body,
        content_type="application/json",
        headers=bearer(users[Role.OFFICER]),
    )
    assert_problem(response, 400, "body")
    assert response.json["title"] == "The body is not valid JSON."


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_api_body_of_another_content_type_is_400(
    client: FlaskClient, users: dict[Role, User], case: Case, content_type: str
) -> None:
    response = client.post(
        "/api/v1/cases",
        data='{"number": "24-1", "title": "Theft"}',
        content_type=content_type,
        headers=bearer(users[Role.OFFICER]),
    )
    assert_problem(response, 400, "body")
    assert "application/json" in response.json["title"]
    assert db.session.query(Case).count() == 1  # only the fixture's


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+05:00",  # in UTC: year 0, which datetime cannot hold
        "9999-12-31T23:59:59-05:00",  # in UTC: year 10000
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
        "1899-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
    ],
)
def test_api_occurred_at_outside_1900_to_2100_is_422(
    client: FlaskClient, users: dict[Role, User], case: Case, occurred_at: str
) -> None:
    officer = bearer(users[Role.OFFICER])
    created = client.post(
        "/api/v1/cases",
        json={"number": "24-9", "title": "Theft", "occurred_at": occurred_at},
        headers=officer,
    )
    assert_problem(created, 422, "occurred_at")
    assert created.json["title"] == "Must be between 1900 and 2100."
    patched = client.patch(
        f"/api/v1/cases/{case.public_id}", json={"occurred_at": occurred_at}, headers=officer
    )
    assert_problem(patched, 422, "occurred_at")
    db.session.refresh(case)
    assert case.occurred_at is None


def test_api_occurred_at_with_offset_is_stored_in_utc(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    response = client.post(
        "/api/v1/cases",
        json={"number": "24-10", "title": "Theft", "occurred_at": "2026-11-01T23:30:00-05:00"},
        headers=bearer(users[Role.OFFICER]),
    )
    assert response.status_code == 201
    assert response.json["occurred_at"] == "2026-11-02T04:30:00+00:00"


def test_api_lone_surrogate_in_a_field_is_422(
    client: FlaskClient, users: dict[Role, User], case: Case, version: ClipVersion
) -> None:
    officer = bearer(users[Role.OFFICER])
    cases = [
        ("POST", "/api/v1/cases", '{"number": "\\ud800", "title": "x"}', "number", officer),
        (
            "PATCH",
            f"/api/v1/cases/{case.public_id}",
            '{"public_summary": "seen at \\udfff night"}',
            "public_summary",
            officer,
        ),
        (
            "POST",
            f"/api/v1/cases/{case.public_id}/clips",
            '{"upload_id": "\\ud83d"}',
            "upload_id",
            officer,
        ),
        (
            "POST",
            f"/api/v1/clips/{version.clip.public_id}/versions",
            '{"plan": {"caption": {"lines": ["Case 1", "\\ud800"]}}}',
            "plan.caption.lines.1",
            officer,
        ),
        (
            "DELETE",
            f"/api/v1/versions/{version.public_id}/approval",
            '{"reason": "\\udc00"}',
            "reason",
            bearer(users[Role.SUPERVISOR]),
        ),
    ]
    for method, path, body, field, auth in cases:
        response = client.open(
            path, method=method, data=body, content_type="application/json", headers=auth
        )
        assert_problem(response, 422, field)
        assert "unpaired surrogate" in response.json["title"], response.json
    # A key that is itself a lone surrogate is named, escaped, not echoed raw.
    response = client.post(
        "/api/v1/cases",
        data='{"number": "1", "title": "t", "\\ud800": 1}',
        content_type="application/json",
        headers=officer,
    )
    assert_problem(response, 422, "\\ud800")
    db.session.refresh(case)
    assert case.public_summary == ""


@pytest.mark.parametrize("plan", [[], "trim", 3, True])
def test_api_nested_object_of_the_wrong_type_is_422_naming_it(
    client: FlaskClient, users: dict[Role, User], version: ClipVersion, plan: object
) -> None:
    response = client.post(
        f"/api/v1/clips/{version.clip.public_id}/versions",
        json={"plan": plan},
        headers=bearer(users[Role.OFFICER]),
    )
    assert_problem(response, 422, "plan")
    assert response.json["title"] == "Must be an object."


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=%00", "q"),
        ("q=%ED%A0%80%00", "q"),  # invalid UTF-8 (an encoded surrogate), then a NUL
        ("after=%E2%80%AE", "after"),  # U+202E RIGHT-TO-LEFT OVERRIDE
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("status=lost", "status"),
    ],
)
def test_api_bad_query_parameter_is_422(
    client: FlaskClient, users: dict[Role, User], query: str, field: str
) -> None:
    response = client.get(f"/api/v1/cases?{query}", headers=bearer(users[Role.OFFICER]))
    assert_problem(response, 422, field)


def test_api_path_id_that_cannot_be_an_id_is_404(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    for path in ("/api/v1/cases/%00", "/api/v1/cases/%ED%A0%80", "/api/v1/clips/a%20b"):
        response = client.get(path, headers=bearer(users[Role.OFFICER]))
        assert response.status_code == 404, path
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "", "title": "Theft"}, "number"),
        ({"number": "   ", "title": "Theft"}, "number"),
        ({"number": "24-1", "title": ""}, "title"),
        ({"number": "24-1", "title": "t", "latitude": 10**400, "longitude": 0}, "latitude"),
        ({"number": "24-1", "title": "t", "latitude": True, "longitude": 0}, "latitude"),
        ({"number": "24-1", "title": "t", "offense": "x\u202ey"}, "offense"),
        ({"number": "24-1", "title": "t", "offense": "a\nb"}, "offense"),
        ({"number": "24-1\n", "title": "t"}, "number"),
    ],
)
def test_api_case_fields_are_checked_like_the_forms(
    client: FlaskClient, users: dict[Role, User], body: dict[str, object], field: str
) -> None:
    response = client.post("/api/v1/cases", json=body, headers=bearer(users[Role.OFFICER]))
    assert_problem(response, 422, field)


def test_api_schema_says_case_number_and_title_must_not_be_blank(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    for name in ("CaseCreate", "CaseUpdate"):
        properties = document["components"]["schemas"][name]["properties"]
        for field in ("number", "title"):
            assert properties[field]["minLength"] == 1
            assert properties[field]["pattern"] == r"\S"
        assert properties["number"]["maxLength"] == 64
        assert properties["title"]["maxLength"] == 200
    assert document["components"]["schemas"]["CaseCreate"]["required"] == ["number", "title"]


def test_api_text_is_normalised_as_the_forms_do(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    response = client.post(
        "/api/v1/cases",
        json={
            "number": "  24-11 ",
            "title": "Cafe\u0301 break-in",  # e + combining acute: NFC makes it one é
            "public_summary": "line one\r\nline two",
        },
        headers=bearer(users[Role.OFFICER]),
    )
    assert response.status_code == 201, response.json
    assert response.json["number"] == "24-11"
    assert response.json["title"] == "Caf\u00e9 break-in"
    assert response.json["public_summary"] == "line one\nline two"


def test_api_wrong_method_is_405_with_allow(app: Flask, client: FlaskClient) -> None:
    for path, allowed in (
        ("/api/v1/cases", {"GET", "HEAD", "OPTIONS", "POST"}),
        ("/api/v1/me", {"GET", "HEAD", "OPTIONS"}),
    ):
        response = client.put(path)
        assert response.status_code == 405
        assert response.mimetype == "application/problem+json"
        assert set(response.headers["Allow"].split(", ")) == allowed
    # The staff pages answer 405 with Allow too, on their HTML error page.
    response = client.put("/staff/login")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


_KEYS = [
    {"t": 1.0, "x": 0, "y": 0, "w": 10, "h": 10},
    {"t": 2.0, "x": 20, "y": 0, "w": 10, "h": 10},
]


@pytest.mark.parametrize(
    ("plan", "field", "title"),
    [
        ({"regions": [{"keyframes": [{"t": 1.0, "x": 0, "y": 0, "w": 10}]}]},
         "plan.regions.0.keyframes.0.h", "Missing data for required field."),
        ({"regions": [{"keyframes": _KEYS, "effect": "smudge"}]}, "plan.regions.0.effect",
         "Must be one of: blur, pixelate, box."),
        ({"regions": [{"keyframes": _KEYS, "source": "suggested:x@1\u202e"}]},
         "plan.regions.0.source", None),
        ({"regions": [{"keyframes": _KEYS, "source": "robot"}]}, "plan.regions.0.source", None),
        ({"regions": [{"keyframes": _KEYS[::-1]}]}, "regions[0].keyframes[1].t",
         "must be after the keyframe before it (2 s)"),
        ({"regions": [{"keyframes": _KEYS, "start": 3.0, "end": 2.0}]}, "regions[0].end",
         "must be after the start"),
        ({"audio_ranges": [{"start": 1.0, "end": 2.0, "effect": "beep"}]},
         "plan.audio_ranges.0.effect", "Must be one of: mute, bleep."),
        ({"audio_ranges": [{"start": 2.0, "end": 1.0}]}, "audio_ranges[0].end",
         "must be after the start"),
    ],
)  # fmt: skip
def test_api_bad_track_or_audio_range_is_422_naming_it(
    client: FlaskClient,
    users: dict[Role, User],
    version: ClipVersion,
    plan: dict[str, object],
    field: str,
    title: str | None,
) -> None:
    response = client.post(
        f"/api/v1/clips/{version.clip.public_id}/versions",
        json={"plan": plan},
        headers=bearer(users[Role.OFFICER]),
    )
    assert_problem(response, 422, field)
    body = response.get_json()
    assert title is None or body["title"] == title
    assert len(version.clip.versions) == 1
