"""The footage jobs end in a state a person can act on, and renders are fenced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from media_pipeline import EditPlan
from portal.extensions import db
from portal.jobs.errors import ClaimLost
from portal.jobs.execution import LOST_WORKER_REASON, claim_job, execute_job, requeue_stale_jobs
from portal.jobs.footage import _record_claim_holds
from portal.models import Clip, ClipVersion, Job, Role, User
from portal.models.base import utcnow
from portal.services.clips import retry_clip
from tests.portal.conftest import csrf_token, run_jobs


def _version_with_plan(clip: Clip, plan: dict, user: User) -> ClipVersion:
    """A version row as create_version makes it, with a plan the validation may
    have let through."""
    from portal.jobs.registry import enqueue

    version = ClipVersion(
        clip=clip,
        number=len(clip.versions) + 1,
        plan=plan,
        created_by=user,
        status="queued",
        source_sha256=clip.original_sha256,
    )
    db.session.add(version)
    db.session.flush()
    enqueue("clips.render", version_id=version.id)
    db.session.commit()
    return version


def test_render_of_a_lone_surrogate_caption_fails_the_version_with_a_reason(
    ready_clip: Clip,
    users: dict[Role, User],
    client: FlaskClient,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    officer = users[Role.OFFICER]
    plan = EditPlan().to_dict() | {"caption": {"lines": ["Do you know him? \ud800"]}}
    version = _version_with_plan(ready_clip, plan, officer)
    assert run_jobs() == ["failed"]
    db.session.refresh(version)
    assert version.status == "failed"
    # The edit plan refuses it by name (before ffmpeg could choke on it).
    assert "unpaired surrogate (U+D800)" in version.error
    assert version.job is not None and version.job.status == "failed"

    # The staff page's retry works from that state.
    signed_in(officer)
    page = f"/staff/clips/{ready_clip.public_id}"
    token = csrf_token(client, "/staff/account")
    response = client.post(f"{page}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.refresh(version)
    assert version.status == "queued" and version.error == ""
    assert [j.status for j in version.jobs] == ["failed", "queued"]


def test_render_failed_by_the_reaper_fails_its_version_and_the_cli_retries_it(
    ready_clip: Clip, users: dict[Role, User], cli: FlaskCliRunner
) -> None:
    version = _version_with_plan(ready_clip, EditPlan().to_dict(), users[Role.OFFICER])
    row = version.job
    assert row is not None
    # A worker took the render on its last attempt and died mid-way.
    db.session.execute(update(Job).where(Job.id == row.id).values(max_attempts=1))
    db.session.commit()
    claim = claim_job(row.id, "celery:gone:1")
    assert claim is not None
    db.session.execute(
        update(ClipVersion)
        .where(ClipVersion.id == version.id)
        .values(status="processing", render_token=claim.token)
    )
    db.session.execute(
        update(Job).where(Job.id == row.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    assert requeue_stale_jobs(timedelta(minutes=1)) == []
    db.session.expire_all()
    assert db.session.get(Job, row.id).status == "failed"  # type: ignore[union-attr]
    version = db.session.get(ClipVersion, version.id)  # type: ignore[assignment]
    assert version.status == "failed" and version.error == LOST_WORKER_REASON

    result = cli.invoke(args=["jobs", "retry", ready_clip.public_id])
    assert result.exit_code == 0, result.output
    assert "queued clips.render" in result.output
    assert run_jobs() == ["succeeded"]
    db.session.expire_all()
    version = db.session.get(ClipVersion, version.id)  # type: ignore[assignment]
    assert version.status == "ready" and version.renditions
    # Nothing left to retry now.
    again = cli.invoke(args=["jobs", "retry", ready_clip.public_id])
    assert again.exit_code == 2 and "Nothing of this clip has failed" in again.output


def test_retry_recovers_a_version_left_processing_by_a_failed_job(
    ready_clip: Clip, users: dict[Role, User]
) -> None:
    # Rows from before the failure hooks: the job failed, the version never heard.
    version = _version_with_plan(ready_clip, EditPlan().to_dict(), users[Role.OFFICER])
    db.session.execute(update(Job).where(Job.id == version.job.id).values(status="failed"))  # type: ignore[union-attr]
    version.status = "processing"
    db.session.commit()
    jobs = retry_clip(ready_clip, users[Role.OFFICER])
    assert [j.name for j in jobs] == ["clips.render"]
    assert run_jobs() == ["succeeded"]
    db.session.refresh(version)
    assert version.status == "ready"


def test_render_two_runs_of_one_version_never_overlap(
    app: Flask, ready_clip: Clip, users: dict[Role, User]
) -> None:
    version = _version_with_plan(ready_clip, EditPlan().to_dict(), users[Role.OFFICER])
    first = version.job
    assert first is not None
    # A render holds the version (its run is alive) ...
    holder = claim_job(first.id, "worker-1")
    assert holder is not None
    db.session.execute(
        update(ClipVersion)
        .where(ClipVersion.id == version.id)
        .values(status="processing", render_token=holder.token)
    )
    db.session.commit()
    # ... when a second render job of the same version runs: it leaves it alone.
    from portal.jobs.registry import enqueue

    second = enqueue("clips.render", version_id=version.id)
    db.session.commit()
    assert execute_job(second.id, "worker-2") == "queued"
    db.session.refresh(version)
    assert version.status == "processing" and version.render_token == holder.token
    assert version.renditions == []
    db.session.refresh(second)
    assert "another render of this version" in second.error and second.attempts == 0

    # The holder's worker dies; the reaper puts its job back; the next run renders.
    db.session.execute(
        update(Job).where(Job.id == first.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    assert requeue_stale_jobs(timedelta(minutes=1)) == [first.id]
    assert execute_job(first.id, "worker-3") == "succeeded"
    db.session.refresh(version)
    assert version.status == "ready" and version.render_token == ""
    recorded = {(r.name, r.storage_key, r.sha256) for r in version.renditions}

    # The stale run (worker 1) can never record outputs over it.
    with pytest.raises(ClaimLost):
        _record_claim_holds(version.id, first.id, holder.token)
    db.session.rollback()
    db.session.refresh(version)
    assert {(r.name, r.storage_key, r.sha256) for r in version.renditions} == recorded
    # And the second job, when it comes round, finds the version done.
    db.session.execute(update(Job).where(Job.id == second.id).values(run_after=utcnow()))
    db.session.commit()
    assert execute_job(second.id, "worker-2") == "succeeded"
    db.session.refresh(version)
    assert {(r.name, r.storage_key, r.sha256) for r in version.renditions} == recorded


def test_footage_jobs_name_their_subject_not_a_foreign_key(ready_clip: Clip) -> None:
    rows = db.session.execute(
        select(Job.name, Job.subject_type, Job.subject_id).order_by(Job.id)
    ).all()
    version = ready_clip.versions[0]
    assert [tuple(r) for r in rows] == [
        ("clips.ingest", "clip", ready_clip.id),
        ("clips.proxy", "clip", ready_clip.id),
        ("clips.render", "clip_version", version.id),
    ]
    assert ready_clip.ingest_job is not None and ready_clip.ingest_job.name == "clips.ingest"
    assert ready_clip.proxy_job is not None and ready_clip.proxy_job.name == "clips.proxy"
    assert version.job is not None and version.job.name == "clips.render"


def test_api_retry_starts_a_failed_render_again(
    ready_clip: Clip, users: dict[Role, User], client: FlaskClient
) -> None:
    from portal.services.users import create_api_token

    officer = users[Role.OFFICER]
    _, secret = create_api_token(officer)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    plan = EditPlan().to_dict() | {"caption": {"lines": ["\udfff tip line"]}}
    version = _version_with_plan(ready_clip, plan, officer)
    assert run_jobs() == ["failed"]

    response = client.post(f"/api/v1/clips/{ready_clip.public_id}/retry", headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.json
    assert body is not None
    assert [r["kind"] for r in body["retried"]] == ["clips.render"]
    db.session.refresh(version)
    assert version.status == "queued"

    # Nothing else has failed: a problem document, nothing changed.
    assert run_jobs() == ["failed"]  # the same caption fails again, with its reason
    db.session.refresh(version)
    assert version.status == "failed"
    for v in ready_clip.versions:
        if v.id != version.id:
            assert v.status == "ready"
    version.status = "ready"  # as if a new edit replaced it: nothing is left to retry
    db.session.commit()
    again = client.post(f"/api/v1/clips/{ready_clip.public_id}/retry", headers=headers)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"


def test_ingest_that_fails_fails_its_clip_with_a_reason_and_retry_restarts_it(
    users: dict[Role, User],
    case,
    sample_clip,  # type: ignore[no-untyped-def]
) -> None:
    import os

    from portal.services.clips import attach_upload
    from tests.portal.conftest import staged_upload

    upload = staged_upload(users[Role.OFFICER], case, sample_clip)
    clip = attach_upload(case, upload.public_id, users[Role.OFFICER])
    os.unlink(clip.staging_path)  # the staged upload is lost before it was stored
    assert run_jobs() == ["failed"]
    db.session.refresh(clip)
    assert clip.status == "failed"
    assert "the uploaded file is gone" in clip.rejection_reason
    jobs = retry_clip(clip, users[Role.OFFICER])
    assert [j.name for j in jobs] == ["clips.ingest"]
    db.session.refresh(clip)
    assert clip.status == "ingesting" and clip.rejection_reason == ""


def test_ingest_whose_claim_was_taken_records_nothing(
    users: dict[Role, User],
    case,
    sample_clip,  # type: ignore[no-untyped-def]
) -> None:
    from portal.jobs.execution import _Context
    from portal.jobs.footage import ingest_clip
    from portal.services.clips import attach_upload
    from tests.portal.conftest import staged_upload

    upload = staged_upload(users[Role.OFFICER], case, sample_clip)
    clip = attach_upload(case, upload.public_id, users[Role.OFFICER])
    row = clip.ingest_job
    assert row is not None
    stale = claim_job(row.id, "worker-1")
    assert stale is not None
    # The reaper takes the run back while it works; ingest finds out when it records.
    assert requeue_stale_jobs(timedelta(0)) == [row.id]
    with pytest.raises(ClaimLost):
        ingest_clip(_Context(claim=stale, engine=db.engine), clip_id=clip.id)
    db.session.rollback()
    db.session.refresh(clip)
    assert clip.status == "ingesting" and clip.versions == []
    # The next claim does the work once.
    assert run_jobs() == ["succeeded"] * 3
    db.session.refresh(clip)
    assert clip.status == "ready" and [v.number for v in clip.versions] == [1]


def test_cli_jobs_list_shows_each_jobs_subject(ready_clip: Clip, cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    version = ready_clip.versions[0]
    assert len(lines) == 3
    assert f"clips.render\tclip_version:{version.id}\tsucceeded" in lines[0]
    assert f"clips.proxy\tclip:{ready_clip.id}\tsucceeded" in lines[1]
    assert f"clips.ingest\tclip:{ready_clip.id}\tsucceeded" in lines[2]


def test_render_that_raises_an_unexpected_error_fails_the_version_with_a_reason(
    ready_clip: Clip, users: dict[Role, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the pipeline raises, the version ends failed with a reason a person can
    read, never stuck in "processing"."""
    import portal.jobs.footage as footage_jobs

    def broken(*args: object, **kwargs: object) -> None:
        "\ud800".encode()  # the UnicodeEncodeError a caption once caused inside ffmpeg's call

    monkeypatch.setattr(footage_jobs, "process", broken)
    version = _version_with_plan(ready_clip, EditPlan().to_dict(), users[Role.OFFICER])
    assert run_jobs() == ["failed"]
    db.session.refresh(version)
    assert version.status == "failed"
    assert version.error.startswith("The text contains a character that cannot be written")
    assert "UnicodeEncodeError" in version.error
