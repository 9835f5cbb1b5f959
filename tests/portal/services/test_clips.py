"""From a finished upload to stored, rendered, approved footage, with real ffmpeg."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.extensions import db
from portal.jobs.execution import execute_job
from portal.models import AuditEvent, Case, Clip, ClipVersion, Role, User
from portal.models.base import utcnow
from portal.services.clips import (
    approval_is_intact,
    approve_version,
    attach_upload,
    create_version,
    plan_from_request,
    revoke_approval,
)
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.storage import get_store
from portal.services.uploads import create_upload
from tests.portal.conftest import csrf_token, run_jobs, staged_upload

CHECKLIST = {"bystanders_blurred": True, "no_juveniles": True, "investigation_safe": True}
ON_BOTH_STORES = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)


@ON_BOTH_STORES
def test_clip_ingest_stores_original_under_its_id_and_renders(
    ready_clip: Clip, sample_clip: Path
) -> None:
    clip = ready_clip
    assert clip.status == "ready"
    assert clip.original_key == f"cases/{clip.case.public_id}/clips/{clip.public_id}/original"
    assert "doorbell" not in clip.original_key
    assert clip.original_sha256 == hashlib.sha256(sample_clip.read_bytes()).hexdigest()
    store = get_store()
    with store.open(clip.original_key) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == clip.original_sha256
    assert (clip.width, clip.height) == (320, 240)
    assert clip.duration_s == pytest.approx(3.0, abs=0.1)
    assert clip.proxy_key and store.exists(clip.proxy_key)
    version = clip.versions[0]
    assert version.status == "ready" and version.number == 1
    names = {r.name for r in version.renditions}
    assert {"poster", "sprite", "sprite_index", "square", "vertical"} <= names
    assert not names & {"web_1080", "web_720"}  # never upscaled from 240p
    for rendition in version.renditions:
        with store.open(rendition.storage_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == rendition.sha256
    assert version.source_sha256 == clip.original_sha256
    assert version.ffmpeg_command[0].endswith("ffmpeg")


@ON_BOTH_STORES
def test_clip_rejected_file_is_kept_with_reason_and_never_processed(
    users: dict[Role, User], case: Case, tmp_path: Path
) -> None:
    fake = tmp_path / "playlist.mp4"
    fake.write_text("#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/secret.ts\n")
    upload = staged_upload(users[Role.OFFICER], case, fake)
    clip = attach_upload(case, upload.public_id, users[Role.OFFICER])
    assert run_jobs() == ["succeeded"]
    db.session.refresh(clip)
    assert clip.status == "rejected" and clip.rejection_reason
    assert clip.versions == [] and clip.proxy_job is None
    assert get_store().exists(clip.original_key)


def test_clip_attach_refuses_unfinished_foreign_or_reused_uploads(
    users: dict[Role, User], case: Case, sample_clip: Path
) -> None:
    officer = users[Role.OFFICER]
    unfinished = create_upload(officer, length=10, max_bytes=100, case=case)
    with pytest.raises(Conflict, match="not complete"):
        attach_upload(case, unfinished.public_id, officer)
    upload = staged_upload(officer, case, sample_clip)
    with pytest.raises(Exception, match="No such upload"):
        attach_upload(case, upload.public_id, users[Role.DETECTIVE])
    attach_upload(case, upload.public_id, officer)
    with pytest.raises(Conflict, match="already attached"):
        attach_upload(case, upload.public_id, officer)
    with pytest.raises(PermissionDenied):
        attach_upload(case, upload.public_id, users[Role.SUPERVISOR])


def test_version_with_blur_renders_and_records_plan(
    ready_clip: Clip, users: dict[Role, User]
) -> None:
    plan = plan_from_request(
        {
            "trim_start": 0.5,
            "trim_end": 2.5,
            "audio": "mute",
            "blur": [{"x": 10, "y": 10, "width": 100, "height": 80, "start": 0.5, "end": 2.0}],
        }
    )
    version = create_version(ready_clip, plan, users[Role.DETECTIVE])
    assert version.number == 2
    assert run_jobs() == ["succeeded"]
    db.session.refresh(version)
    assert version.status == "ready"
    # A version 1 still rectangle is recorded as a track of one box.
    assert version.plan["regions"][0]["keyframes"] == [
        {"t": 0.5, "x": 10, "y": 10, "w": 100, "h": 80}
    ]
    web = next(r for r in version.renditions if r.name == "web_480" or r.role == "web")
    assert web.duration_s == pytest.approx(2.0, abs=0.1)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.edit"))
    assert event is not None and event.details["number"] == 2


def test_version_with_moving_track_and_bleep_renders_and_records_them(
    ready_clip: Clip,
    users: dict[Role, User],
    client: FlaskClient,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    track = {
        "keyframes": [
            {"t": 0.0, "x": 10, "y": 10, "w": 60, "h": 60},
            {"t": 2.0, "x": 200, "y": 100, "w": 90, "h": 80},
        ],
        "start": 0.0,
        "end": 2.5,
        "effect": "pixelate",
        "source": "suggested:centerface@1.0.1",
    }
    bleep = {"start": 1.0, "end": 1.5, "effect": "bleep"}
    plan = plan_from_request({"regions": [track], "audio_ranges": [bleep]})
    version = create_version(ready_clip, plan, users[Role.DETECTIVE])
    assert run_jobs() == ["succeeded"]
    db.session.refresh(version)
    assert version.status == "ready"
    assert version.plan["regions"] == [track | {"whole_frame": False}]
    assert version.plan["audio_ranges"] == [bleep]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.edit"))
    assert event is not None and event.details["plan"]["regions"][0]["source"] == track["source"]
    signed_in(users[Role.DETECTIVE])
    page = client.get(f"/staff/clips/{ready_clip.public_id}").get_data(as_text=True)
    assert "<dd>1 region (1 moving)</dd>" in page
    assert "Kept, 1 range muted or bleeped</dd>" in page


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ({"trim_end": 99}, "trim_end"),
        ({"blur": [{"x": 300, "y": 0, "width": 100, "height": 10}]}, "regions[0].keyframes[0].w"),
        (
            {
                "regions": [
                    {
                        "keyframes": [
                            {"t": 0.5, "x": 0, "y": 0, "w": 10, "h": 10},
                            {"t": 1.0, "x": 0, "y": 0, "w": 400, "h": 10},
                        ]
                    }
                ]
            },
            "regions[0].keyframes[1].w",
        ),
        ({"audio_ranges": [{"start": 9.0, "end": 9.5}]}, "audio_ranges[0].start"),
        ({"audio": "loud"}, "audio"),
        ({"watermark": "/etc/passwd"}, "watermark"),
        ({"watermark": True}, "watermark"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_version_bad_plan_names_the_field(
    ready_clip: Clip, users: dict[Role, User], plan: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        create_version(ready_clip, plan_from_request(plan), users[Role.OFFICER])
    assert excinfo.value.field == field
    assert len(ready_clip.versions) == 1


def test_approval_rules(ready_clip: Clip, users: dict[Role, User], make_user) -> None:  # type: ignore[no-untyped-def]
    version = ready_clip.versions[0]
    supervisor = users[Role.SUPERVISOR]
    with pytest.raises(PermissionDenied):
        approve_version(version, users[Role.DETECTIVE], CHECKLIST)
    with pytest.raises(ValidationFailed, match="Confirm every item"):
        approve_version(version, supervisor, {**CHECKLIST, "no_juveniles": False})
    approval = approve_version(version, supervisor, CHECKLIST)
    assert approval_is_intact(version)
    with pytest.raises(Conflict, match="already approved"):
        approve_version(version, supervisor, CHECKLIST)
    with pytest.raises(ValidationFailed):
        revoke_approval(version, supervisor, "  ")
    revoke_approval(version, supervisor, "Bystander's face visible at 0:02")
    assert version.active_approval is None
    assert approval.revoked_by_id == supervisor.id


def test_approval_is_refused_to_the_author(
    ready_clip: Clip, users: dict[Role, User], make_user
) -> None:  # type: ignore[no-untyped-def]
    editing_supervisor = make_user(Role.SUPERVISOR, Role.DETECTIVE)
    ready_clip.case.assignments  # noqa: B018
    from portal.services.cases import assign_detective

    assign_detective(ready_clip.case, editing_supervisor, actor=users[Role.OFFICER])
    db.session.commit()
    version = create_version(ready_clip, plan_from_request({"audio": "strip"}), editing_supervisor)
    run_jobs()
    db.session.refresh(version)
    with pytest.raises(PermissionDenied, match="edited yourself"):
        approve_version(version, editing_supervisor, CHECKLIST)
    approve_version(version, users[Role.SUPERVISOR], CHECKLIST)


def test_approval_detects_renditions_changed_after_approval(
    ready_clip: Clip, users: dict[Role, User]
) -> None:
    version = ready_clip.versions[0]
    approve_version(version, users[Role.SUPERVISOR], CHECKLIST)
    version.renditions[0].sha256 = "0" * 64
    assert not approval_is_intact(version)


def test_rerunning_a_finished_render_does_nothing(ready_clip: Clip) -> None:
    version = ready_clip.versions[0]
    job = version.job
    assert job is not None
    job.status = "queued"
    job.run_after = utcnow()
    db.session.commit()
    before = [(r.name, r.sha256) for r in version.renditions]
    assert execute_job(job.id, "again") == "succeeded"
    db.session.refresh(version)
    assert [(r.name, r.sha256) for r in version.renditions] == before


# -- the pages and endpoints ------------------------------------------------------------


def test_clip_status_json_reports_jobs_and_renditions(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.DETECTIVE])
    data = client.get(f"/staff/clips/{ready_clip.public_id}/status.json").json
    assert data["clip"]["status"] == "ready"
    assert data["clip"]["proxy_url"].endswith("/proxy.mp4")
    assert {j["kind"] for j in data["jobs"]} == {"ingest", "proxy", "render"}
    assert all(j["status"] == "succeeded" and j["progress"] == 1.0 for j in data["jobs"])
    poster = data["versions"][0]["poster_url"]
    response = client.get(poster)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"


@ON_BOTH_STORES
def test_clip_proxy_supports_range_requests(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.OFFICER])
    response = client.get(
        f"/staff/clips/{ready_clip.public_id}/proxy.mp4", headers={"Range": "bytes=0-99"}
    )
    assert response.status_code == 206 and len(response.data) == 100
    assert response.headers["Cache-Control"] == "private, no-store"


@ON_BOTH_STORES
def test_original_download_is_an_audited_attachment(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    sample_clip: Path,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.DETECTIVE])
    response = client.get(f"/staff/clips/{ready_clip.public_id}/original")
    assert response.status_code == 200
    assert response.data == sample_clip.read_bytes()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/octet-stream"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.download"))
    assert event is not None and event.actor_id == users[Role.DETECTIVE].id


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.COORDINATOR, Role.ADMIN])
def test_original_download_refused_to_other_roles(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    role: Role,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[role])
    assert client.get(f"/staff/clips/{ready_clip.public_id}/original").status_code == 403


def test_clip_of_another_case_is_not_found(
    ready_clip: Clip, client: FlaskClient, make_user, signed_in: Callable[[User], FlaskClient]
) -> None:  # type: ignore[no-untyped-def]
    signed_in(make_user(Role.DETECTIVE))
    for path in ("", "/status.json", "/proxy.mp4", "/original", "/evidence"):
        response = client.get(f"/staff/clips/{ready_clip.public_id}{path}")
        assert response.status_code in (403, 404), path
        assert response.status_code == 404 or path == "/original"


def test_save_version_endpoint_validates_and_creates(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.OFFICER])
    headers = {"X-CSRFToken": csrf_token(client, "/staff/")}
    url = f"/staff/clips/{ready_clip.public_id}/versions"
    bad = client.post(url, json={"plan": {"trim_end": 50}}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "trim_end"
    good = client.post(url, json={"plan": {"audio": "strip"}}, headers=headers)
    assert good.status_code == 201 and good.json["version"]["number"] == 2
    assert client.post(url, json={"plan": {}}).status_code == 400  # no CSRF header


def test_approve_and_revoke_through_the_pages(
    ready_clip: Clip, app: Flask, users: dict[Role, User]
) -> None:
    from tests.portal.conftest import sign_in

    version = ready_clip.versions[0]
    supervisor = app.test_client()
    sign_in(supervisor, users[Role.SUPERVISOR].email)
    token = csrf_token(supervisor, "/staff/")
    url = f"/staff/versions/{version.public_id}/approval"
    supervisor.post(url, data={"csrf_token": token, "bystanders_blurred": "y"})
    assert db.session.get(ClipVersion, version.id).active_approval is None  # type: ignore[union-attr]
    supervisor.post(url, data={"csrf_token": token, **{k: "y" for k in CHECKLIST}})
    assert db.session.get(ClipVersion, version.id).active_approval is not None  # type: ignore[union-attr]
    officer = app.test_client()
    sign_in(officer, users[Role.OFFICER].email)
    response = officer.post(url, data={"csrf_token": csrf_token(officer, "/staff/")})
    assert response.status_code == 403


@ON_BOTH_STORES
def test_version_with_agency_watermark_renders(
    ready_clip: Clip,
    users: dict[Role, User],
    cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    logo = tmp_path / "logo.png"
    subprocess.run(
        [
            shutil.which("ffmpeg") or "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=64x32",
            "-frames:v",
            "1",
            str(logo),
        ],
        check=True,
    )
    bad = tmp_path / "logo.svg"
    bad.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    refused = cli.invoke(args=["agencies", "watermark", "springfield", str(bad)])
    assert refused.exit_code == 2 and "Not a usable logo" in refused.output
    result = cli.invoke(args=["agencies", "watermark", "springfield", str(logo)])
    assert result.exit_code == 0, result.output
    agency = ready_clip.case.agency
    db.session.refresh(agency)
    plan = plan_from_request({"watermark": True}, watermark_path=f"store:{agency.watermark_key}")
    version = create_version(ready_clip, plan, users[Role.OFFICER])
    assert run_jobs() == ["succeeded"]
    db.session.refresh(version)
    assert version.status == "ready"
    assert version.plan["watermark"]["path"] == f"store:{agency.watermark_key}"
    assert any("overlay" in part for part in version.ffmpeg_command)


def test_original_download_is_safe_for_a_stored_case_number_with_crlf(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    sample_clip: Path,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    # A row from before the text rules: written straight to the database, past them.
    db.session.execute(
        update(Case)
        .where(Case.id == ready_clip.case_id)
        .values(number="24-0001\r\nSet-Cookie: planted=1")
    )
    db.session.commit()
    signed_in(users[Role.DETECTIVE])
    response = client.get(f"/staff/clips/{ready_clip.public_id}/original")
    assert response.status_code == 200
    assert response.data == sample_clip.read_bytes()
    disposition = response.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith(
        f'attachment; filename="24-0001__Set-Cookie__planted_1-{ready_clip.public_id}-original"'
    )
    assert "planted" not in response.headers.get("Set-Cookie", "")


def test_clip_page_shows_a_stored_plan_with_a_lone_surrogate(
    ready_clip: Clip,
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    # A plan stored before captions refused lone surrogates (JSON escapes it as \ud800).
    version = ready_clip.versions[0]
    plan = dict(version.plan or {})
    plan["caption"] = {"lines": ["Case 24-0001 \ud800", "Do you recognize this person?"]}
    db.session.execute(update(ClipVersion).where(ClipVersion.id == version.id).values(plan=plan))
    db.session.commit()
    signed_in(users[Role.DETECTIVE])
    response = client.get(f"/staff/clips/{ready_clip.public_id}")
    assert response.status_code == 200
    assert "Case 24-0001 \ufffd / Do you recognize this person?" in response.get_data(as_text=True)
    status = client.get(f"/staff/clips/{ready_clip.public_id}/status.json")
    assert status.status_code == 200


def test_revoke_through_the_page_refuses_a_reason_with_a_lone_surrogate(
    ready_clip: Clip, app: Flask, users: dict[Role, User]
) -> None:
    from tests.portal.conftest import sign_in

    version = ready_clip.versions[0]
    approve_version(version, users[Role.SUPERVISOR], CHECKLIST)
    supervisor = app.test_client()
    sign_in(supervisor, users[Role.SUPERVISOR].email)
    token = csrf_token(supervisor, "/staff/")
    url = f"/staff/versions/{version.public_id}/approval/revoke"
    response = supervisor.post(
        url,
        json={"csrf_token": token, "reason": "wrong clip \ud800"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 302
    page = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reason must not contain an unpaired surrogate (U+D800)." in page
    assert db.session.get(ClipVersion, version.id).active_approval is not None  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as caught:
        revoke_approval(version, users[Role.SUPERVISOR], "x" * 2001)
    assert caught.value.field == "reason"
