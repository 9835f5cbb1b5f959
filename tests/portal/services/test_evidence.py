"""Evidence integrity checks and deletion."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import AuditEvent, Clip, Role, User
from portal.models.base import utcnow
from portal.services.clips import approve_version
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.evidence import delete_clip
from portal.services.storage import get_store
from tests.portal.conftest import csrf_token

CHECKLIST = {"bystanders_blurred": True, "no_juveniles": True, "investigation_safe": True}


ON_BOTH_STORES = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)


@ON_BOTH_STORES
def test_evidence_verify_passes_on_intact_storage(ready_clip: Clip, cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["evidence", "verify", ready_clip.case.number])
    assert result.exit_code == 0, result.output
    objects = 2 + 1 + len(ready_clip.versions[0].renditions)  # original, proxy, manifest
    assert f"ok: {objects} objects checked, 0 problems" in result.output
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.verify"))
    assert event is not None and event.details["checked"] == objects


@ON_BOTH_STORES
def test_evidence_verify_names_altered_and_missing_objects(
    ready_clip: Clip, cli: FlaskCliRunner
) -> None:
    store = get_store()
    with store.open(ready_clip.original_key) as stored:
        original = bytearray(stored.read())
    original[100:108] = b"tampered"
    store.put_stream(ready_clip.original_key, io.BytesIO(original), "application/octet-stream")
    poster = next(r for r in ready_clip.versions[0].renditions if r.name == "poster")
    store.delete(poster.storage_key)
    result = cli.invoke(args=["evidence", "verify"])
    assert result.exit_code == 1
    assert f"hash mismatch: {ready_clip.original_key}" in result.output
    assert f"missing: {poster.storage_key}" in result.output
    assert "FAILED" in result.output and "2 problems" in result.output


def test_evidence_verify_unknown_case(cli: FlaskCliRunner, app: Flask) -> None:
    result = cli.invoke(args=["evidence", "verify", "no-such-case"])
    assert result.exit_code == 2 and "no single case" in result.output


def _age(clip: Clip, days: int) -> None:
    db.session.execute(
        update(Clip).where(Clip.id == clip.id).values(created_at=utcnow() - timedelta(days=days))
    )
    db.session.commit()
    db.session.refresh(clip)


def test_delete_needs_admin_reason_and_retention(
    app: Flask, ready_clip: Clip, users: dict[Role, User]
) -> None:
    admin = users[Role.ADMIN]
    with pytest.raises(PermissionDenied):
        delete_clip(ready_clip, users[Role.SUPERVISOR], "no longer needed for anything")
    with pytest.raises(ValidationFailed):
        delete_clip(ready_clip, admin, "short")
    with pytest.raises(Conflict, match="retention period keeps this evidence until"):
        delete_clip(ready_clip, admin, "case closed and retention over")
    _age(ready_clip, 400)
    approve_version(ready_clip.versions[0], users[Role.SUPERVISOR], CHECKLIST)
    with pytest.raises(Conflict, match="approved for release"):
        delete_clip(ready_clip, admin, "case closed and retention over")


@ON_BOTH_STORES
def test_delete_removes_objects_and_keeps_the_record(
    app: Flask, ready_clip: Clip, users: dict[Role, User]
) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], evidence_retention_days=0)
    store = get_store()
    keys = [ready_clip.original_key, *(r.storage_key for r in ready_clip.versions[0].renditions)]
    delete_clip(ready_clip, users[Role.ADMIN], "court order 2026-114: destroy footage")
    assert not any(store.exists(key) for key in keys)
    assert ready_clip.status == "deleted" and ready_clip.original_sha256
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.delete"))
    assert event is not None and event.details["reason"].startswith("court order")
    with pytest.raises(Conflict):
        delete_clip(ready_clip, users[Role.ADMIN], "court order 2026-114: destroy footage")


def test_delete_through_the_evidence_page(
    app: Flask,
    ready_clip: Clip,
    users: dict[Role, User],
    client: FlaskClient,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], evidence_retention_days=0)
    signed_in(users[Role.ADMIN])
    page = f"/staff/clips/{ready_clip.public_id}/evidence"
    assert "Delete this evidence" in client.get(page).get_data(as_text=True)
    token = csrf_token(client, page)
    url = f"/staff/clips/{ready_clip.public_id}/delete"
    client.post(url, data={"csrf_token": token, "reason": "short"})
    assert db.session.get(Clip, ready_clip.id).status == "ready"  # type: ignore[union-attr]
    client.post(url, data={"csrf_token": token, "reason": "duplicate upload of clip 3"})
    assert db.session.get(Clip, ready_clip.id).status == "deleted"  # type: ignore[union-attr]
    poster = client.get(f"/staff/versions/{ready_clip.versions[0].public_id}/media/poster")
    assert poster.status_code == 404


def test_delete_through_the_evidence_page_refuses_a_reason_with_a_bidi_override(
    app: Flask,
    ready_clip: Clip,
    users: dict[Role, User],
    client: FlaskClient,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], evidence_retention_days=0)
    signed_in(users[Role.ADMIN])
    page = f"/staff/clips/{ready_clip.public_id}/evidence"
    token = csrf_token(client, page)
    url = f"/staff/clips/{ready_clip.public_id}/delete"
    response = client.post(url, data={"csrf_token": token, "reason": "duplicate \u202eof clip 3"})
    assert response.status_code == 302
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reason for deleting must not contain U+202E RIGHT-TO-LEFT OVERRIDE." in shown
    assert db.session.get(Clip, ready_clip.id).status == "ready"  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as caught:
        delete_clip(ready_clip, users[Role.ADMIN], "duplicate \u202eof clip 3")
    assert caught.value.field == "reason"
    response = client.post(url, data={"csrf_token": token, "reason": "short"})
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Give the reason for deleting this evidence (at least 10 characters)." in shown
