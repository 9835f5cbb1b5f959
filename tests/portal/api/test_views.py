from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import ApiToken, AuditEvent, Role, User
from portal.models.base import utcnow
from portal.services.users import create_api_token, disable_user


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_api_me_with_token(client: FlaskClient, users: dict[Role, User]) -> None:
    token, secret = create_api_token(users[Role.DETECTIVE], name="script")
    db.session.commit()
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 200
    assert response.json == {
        "id": users[Role.DETECTIVE].public_id,
        "email": "detective@springfield.example",
        "display_name": users[Role.DETECTIVE].display_name,
        "roles": ["detective"],
        "agency": "springfield",
    }
    db.session.refresh(token)
    assert token.last_used_at is not None


def test_api_token_is_stored_hashed(users: dict[Role, User]) -> None:
    token, secret = create_api_token(users[Role.OFFICER])
    db.session.commit()
    assert secret.startswith("tt_") and secret not in token.token_hash
    assert db.session.scalar(select(ApiToken).where(ApiToken.token_hash == secret)) is None


def test_api_refuses_bad_tokens_with_problem_json(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    expired, expired_secret = create_api_token(users[Role.OFFICER])
    revoked, revoked_secret = create_api_token(users[Role.OFFICER])
    db.session.execute(
        update(ApiToken).where(ApiToken.id == expired.id).values(expires_at=utcnow())
    )
    revoked.revoked_at = utcnow()
    db.session.commit()
    cases = {
        "missing_token": {},
        "malformed_token": bearer("not-a-token"),
        "unknown_token": bearer("tt_" + "x" * 43),
        "expired_token": bearer(expired_secret),
        "revoked_token": bearer(revoked_secret),
    }
    for reason, headers in cases.items():
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, reason
        assert response.mimetype == "application/problem+json"
        assert response.json["title"] == "A valid API token is required."
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
        assert event is not None and event.details == {"reason": reason}


def test_api_token_of_disabled_user_is_refused(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    _, secret = create_api_token(users[Role.OFFICER], expires_in=timedelta(days=1))
    db.session.commit()
    disable_user(users[Role.OFFICER])
    db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401


def test_api_ignores_session_cookies(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.ADMIN])
    assert client.get("/api/v1/me").status_code == 401


def test_api_openapi_document_describes_operations(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    assert "/me" in document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_api_unknown_path_is_problem_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_api_openapi_document_lists_every_operation(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    import re

    document = client.get("/api/v1/openapi.json").json
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        assert path in document["paths"], path
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], (method, path)


def operations(document: dict) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]


def test_api_openapi_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_api_openapi_document_declares_every_operations_permission(
    app, client: FlaskClient
) -> None:  # type: ignore[no-untyped-def]
    import re

    document = client.get("/api/v1/openapi.json").json
    assert document["security"] == [{"bearer": []}]
    declared = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        permission = getattr(app.view_functions[rule.endpoint], "required_permission", None)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = document["paths"][path][method.lower()]
            if permission is None:
                assert "x-permission" not in operation, (method, path)
                continue
            assert operation["x-permission"] == permission.value, (method, path)
            assert "403" in operation["responses"], (method, path)
            assert "401" in operation["responses"], (method, path)
            declared += 1
    assert declared == 32
    assert document["paths"]["/cases/{case_id}/solve"]["post"]["x-permission"] == "case.edit"
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    assert document["paths"]["/cases"]["post"]["x-permission"] == "case.create"
    assert document["paths"]["/versions/{version_id}/approval"]["delete"]["x-permission"] == (
        "version.approve"
    )


def test_api_openapi_document_declares_output_schemas_and_problems(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    listing = document["paths"]["/cases"]["get"]["responses"]["200"]["content"]
    assert listing["application/json"]["schema"] == {"$ref": "#/components/schemas/CaseList"}
    assert schemas["CaseList"]["properties"]["cases"]["items"] == {
        "$ref": "#/components/schemas/Case"
    }
    assert "id" in schemas["Case"]["properties"] and "id" not in schemas["CaseCreate"]["properties"]
    created = document["paths"]["/cases"]["post"]
    assert created["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaseCreate"
    }
    assert schemas["Problem"]["properties"]["field"] == {"type": "string"}
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if "$ref" in response:
                response = document["components"]["responses"][response["$ref"].split("/")[-1]]
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (
                    method,
                    path,
                    status,
                )
    assert "422" in created["responses"]


def test_api_openapi_document_describes_tus_and_multipart_bodies(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    append = paths["/uploads/{upload_id}"]["patch"]
    assert append["requestBody"]["content"] == {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    headers = {p["name"]: p for p in append["parameters"] if p["in"] == "header"}
    assert headers["Tus-Resumable"]["required"] and headers["Upload-Offset"]["required"]
    assert {"head", "patch", "delete"} <= set(paths["/uploads/{upload_id}"])
    creation = {p["name"] for p in paths["/uploads"]["post"]["parameters"]}
    assert {"Tus-Resumable", "Upload-Length", "Upload-Metadata"} <= creation
    clip = paths["/cases/{case_id}/clips"]["post"]["requestBody"]["content"]
    assert set(clip) == {"application/json", "multipart/form-data"}
    assert clip["multipart/form-data"]["schema"] == {"$ref": "#/components/schemas/ClipFile"}


def test_api_every_operation_keeps_a_unique_operation_id(client: FlaskClient) -> None:
    """Generated clients name their methods after these: they must not change."""
    document = client.get("/api/v1/openapi.json").json
    ids = {(method, path): op.get("operationId") for path, method, op in operations(document)}
    assert ids == {
        ("get", "/me"): "getMe",
        ("get", "/tokens"): "listTokens",
        ("get", "/audit/verify"): "verifyAuditChain",
        ("get", "/openapi.json"): "getOpenApi",
        ("post", "/cases"): "createCase",
        ("get", "/cases"): "listCases",
        ("get", "/cases/{case_id}"): "getCase",
        ("patch", "/cases/{case_id}"): "updateCase",
        ("options", "/uploads"): "tusOptions",
        ("post", "/uploads"): "createUpload",
        ("head", "/uploads/{upload_id}"): "getUploadOffset",
        ("patch", "/uploads/{upload_id}"): "appendUpload",
        ("delete", "/uploads/{upload_id}"): "cancelUpload",
        ("post", "/cases/{case_id}/clips"): "createClip",
        ("get", "/clips/{clip_id}"): "getClip",
        ("post", "/clips/{clip_id}/versions"): "createVersion",
        ("post", "/clips/{clip_id}/retry"): "retryClip",
        ("get", "/versions/{version_id}/renditions/{name}"): "getRendition",
        ("post", "/versions/{version_id}/approval"): "approveVersion",
        ("delete", "/versions/{version_id}/approval"): "revokeApproval",
        ("get", "/tips"): "listTips",
        ("get", "/posts"): "listPosts",
        ("post", "/posts"): "createPost",
        ("get", "/posts/{post_id}"): "getPost",
        ("patch", "/posts/{post_id}"): "updatePost",
        ("delete", "/posts/{post_id}"): "cancelPost",
        ("get", "/schedule"): "getSchedule",
        ("get", "/channels"): "listChannels",
        ("get", "/tips/{tip_id}"): "getTip",
        ("patch", "/tips/{tip_id}"): "updateTip",
        ("post", "/tips/{tip_id}/messages"): "createTipMessage",
        ("get", "/cases/{case_id}/history"): "getCaseHistory",
        ("post", "/cases/{case_id}/solve"): "solveCase",
        ("post", "/cases/{case_id}/status"): "changeCaseStatus",
        ("post", "/appeals/{appeal_id}/publication"): "publishAppeal",
        ("delete", "/appeals/{appeal_id}/publication"): "withdrawAppeal",
        ("get", "/public/appeals"): "listPublicAppeals",
        ("get", "/public/appeals/{appeal_id}"): "getPublicAppeal",
        ("get", "/public/challenges"): "getChallenge",
        ("post", "/public/appeals/{appeal_id}/tips"): "createAppealTip",
        ("post", "/public/tips"): "createPublicTip",
        ("get", "/public/tips/{number}/messages"): "getPublicTipMessages",
        ("post", "/public/tips/{number}/messages"): "createPublicTipMessage",
        ("get", "/outcomes"): "getOutcomes",
    }
