"""Photos and videos sent with a tip, as a tipster meets them (a plain multipart form,
no JavaScript) and as the detective then sees them; and every way a file can go wrong
without losing the tip."""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from portal.extensions import db
from portal.models import Agency, AttachmentStatus, AuditEvent, Role, Tip, TipAttachment, User
from portal.models.base import utcnow
from portal.services.attachments import (
    DRAFT_PREFIX,
    draft_key,
    form_body_limit,
    parts_dir,
    staging_path,
    sweep_drafts,
)
from portal.services.storage import get_store
from tests.media_pipeline.test_attachments import GPS_IFD, phone_photo
from tests.portal.conftest import run_jobs
from tests.portal.staff.test_tips_views import make_appeal

FORM = "/agencies/springfield/tip"


def form_fields(client: FlaskClient, path: str = FORM) -> dict[str, str]:
    page = client.get(path).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    draft = re.search(r'name="draft" type="hidden" value="([^"]+)"', page)
    assert csrf, f"no CSRF token on {path}"
    return {"csrf_token": csrf.group(1), **({"draft": draft.group(1)} if draft else {})}


def send(
    client: FlaskClient,
    fields: dict[str, str],
    files: list[tuple[bytes, str, str]],
    body: str = "He lives at 12 Elm Street.",
    path: str = FORM,
):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"body": body, **fields}
    data["files"] = [(io.BytesIO(content), name, ctype) for content, name, ctype in files]
    return client.post(path, data=data, content_type="multipart/form-data")


@pytest.fixture
def photo(tmp_path: Path) -> bytes:
    return phone_photo(tmp_path / "IMG_0001.jpg").read_bytes()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tests.media_pipeline.test_attachments import phone_mov

    return phone_mov.__wrapped__(tmp_path_factory).read_bytes()  # type: ignore[attr-defined]


def latest_tip() -> Tip:
    tip = db.session.scalar(sa.select(Tip).order_by(Tip.id.desc()))
    assert tip is not None
    return tip


def receipt_of(page: str) -> tuple[str, str]:
    number = re.search(r'class="receipt-number">([^<]+)<', page)
    passphrase = re.search(r'class="receipt-passphrase">([^<]+)<', page)
    assert number and passphrase
    return number.group(1), passphrase.group(1)


def thread(client: FlaskClient, page: str) -> str:
    number, passphrase = receipt_of(page)
    fields = form_fields(client, "/tips/check")  # no files there: no draft
    response = client.post(
        "/tips/check",
        data={"number": number, "passphrase": passphrase, "csrf_token": fields["csrf_token"]},
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)
def test_tip_with_a_photo_and_a_video_without_javascript(
    app: Flask,
    client: FlaskClient,
    agency: Agency,
    photo: bytes,
    video: bytes,
    storage_location: tuple[str, str | None],
) -> None:
    response = send(
        client,
        form_fields(client),
        [(photo, "IMG_0001.jpg", "image/jpeg"), (video, "jane-doe.MOV", "video/quicktime")],
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "Photo 1" in page and "Video 2" in page and "being checked" in page
    tip = latest_tip()
    assert [a.status for a in tip.attachments] == ["queued", "queued"]
    store = get_store()
    drafts = sorted(store.iter_keys(DRAFT_PREFIX))
    if storage_location[0].startswith("s3://"):
        # Nothing waits on the receiving machine: any worker can process the files.
        assert not list(parts_dir().glob("tip-*"))
        assert drafts == sorted(draft_key(a.public_id) for a in tip.attachments)
    else:
        assert drafts == []  # the parts directory is the shared one
    assert run_jobs() == ["succeeded", "succeeded"]
    assert list(store.iter_keys(DRAFT_PREFIX)) == []
    db.session.expire_all()
    image, clip = latest_tip().attachments
    assert (image.status, image.kind, image.format) == ("ready", "image", "jpeg")
    assert (clip.status, clip.kind, clip.format) == ("ready", "video", "mov")
    # The original is kept unchanged as evidence; the derivative carries no GPS.
    with store.open(image.original_key) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == hashlib.sha256(photo).hexdigest()
    with store.open(image.derivative_key) as stored:
        derivative = stored.read()
    with Image.open(io.BytesIO(derivative)) as opened:
        assert not opened.getexif().get_ifd(GPS_IFD) and (opened.width, opened.height) == (32, 64)
    with store.open(clip.derivative_key) as stored:
        assert b"\xa9xyz" not in stored.read()
    # Nothing names the sender: no file name, no client type, in rows or keys.
    dump = repr([row.__dict__ for row in db.session.scalars(sa.select(TipAttachment))])
    for clue in ("IMG_0001", "jane-doe", 'image/jpeg"', "quicktime"):
        assert clue not in dump
    assert not list(parts_dir().glob("tip-*"))  # the staging disk is empty again
    assert "received" in thread(client, page)


def test_a_file_renamed_jpg_is_refused_and_the_tip_kept(
    client: FlaskClient, agency: Agency
) -> None:
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
    response = send(client, form_fields(client), [(pdf, "photo.jpg", "image/jpeg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "not accepted: this is a PDF document" in page
    (attachment,) = latest_tip().attachments
    assert attachment.status == "refused" and not staging_path(attachment.public_id).exists()
    assert "this is a PDF document" in thread(client, page)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("truncated", "the image is damaged or incomplete"),
        ("bomb", "the image has more than 100 million pixels"),
        ("subtitled", "the codec mov_text is not accepted"),
    ],
)
def test_files_the_pipeline_refuses_are_explained_on_the_receipt_thread(
    client: FlaskClient, agency: Agency, photo: bytes, tmp_path: Path, make: str, reason: str
) -> None:
    if make == "truncated":
        content = photo[: len(photo) // 2]
    elif make == "bomb":
        buffer = io.BytesIO()
        Image.new("1", (20000, 20000)).save(buffer, "PNG")
        content = buffer.getvalue()
    else:
        import subprocess

        srt = tmp_path / "s.srt"
        srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
        out = tmp_path / "clip.mov"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=1",
             "-i", str(srt), "-map", "0", "-map", "1", "-c:v", "libx264", "-preset",
             "ultrafast", "-c:s", "mov_text", str(out)],
            check=True,
        )  # fmt: skip
        content = out.read_bytes()
    response = send(client, form_fields(client), [(content, "upload.jpg", "image/jpeg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "being checked" in page
    assert run_jobs() == ["succeeded"]  # a refusal is an answer, not a failed job
    (attachment,) = latest_tip().attachments
    db.session.refresh(attachment)
    assert attachment.status == "refused" and attachment.reason == reason
    assert not attachment.original_key and not staging_path(attachment.public_id).exists()
    assert f"not accepted: {reason}" in thread(client, page)


def test_too_many_files_keep_the_text_and_the_first_five(
    client: FlaskClient, agency: Agency, photo: bytes
) -> None:
    fields = form_fields(client)
    response = send(client, fields, [(photo, f"p{i}.jpg", "image/jpeg") for i in range(7)])
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "You can attach at most 5 files at once" in page
    assert "He lives at 12 Elm Street." in page  # the text is kept
    assert page.count("received; it is sent with your tip") == 5
    assert db.session.scalar(sa.select(sa.func.count(Tip.id))) == 0
    fields["csrf_token"] = form_fields(client)["csrf_token"]
    response = send(client, fields, [])
    assert response.status_code == 200
    assert len(latest_tip().attachments) == 5
    # The draft was taken: the same form sent again takes nothing more.
    fields["csrf_token"] = form_fields(client)["csrf_token"]
    send(client, fields, [])
    assert len(latest_tip().attachments) == 0


def test_a_file_over_the_size_limit_is_dropped_with_a_message(
    app: Flask, client: FlaskClient, agency: Agency, photo: bytes
) -> None:
    # The limit is a setting (256 MiB by default); 1 MiB here keeps the test small.
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], tip_attachment_max_bytes=1024**2)
    big = photo + b"\0" * (1024**2)
    response = send(
        client,
        form_fields(client),
        [(big, "big.jpg", "image/jpeg"), (photo, "a.jpg", "image/jpeg")],
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "File 1 is 1.1 MB; the largest accepted is 1.0 MB. It was not kept." in page
    assert "He lives at 12 Elm Street." in page and "Photo 1" in page
    assert len(list(parts_dir().glob("tip-*"))) == 1  # only the small one is on disk


def test_a_body_over_the_forms_limit_is_refused_before_it_is_read(
    app: Flask, client: FlaskClient, agency: Agency
) -> None:
    limit = form_body_limit(app.config["TATTLETALE"])
    assert limit == 5 * 256 * 1024**2 + 1024**2  # the defaults, from the README
    response = client.post(
        FORM,
        input_stream=io.BytesIO(b"--b\r\n"),
        content_type="multipart/form-data; boundary=b",
        environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
    )
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "larger than this form accepts (at most 5 files of 256 MB each)" in page
    assert "Go back to keep what you wrote" in page
    assert not list(parts_dir().glob("tip-*"))


def test_an_expired_form_keeps_the_text_and_the_files(
    client: FlaskClient, agency: Agency, photo: bytes
) -> None:
    fields = form_fields(client)
    stale = {**fields, "csrf_token": "expired-token"}
    response = send(client, stale, [(photo, "a.jpg", "image/jpeg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form had expired" in page and "He lives at 12 Elm Street." in page
    assert "Photo 1" in page and "received; it is sent with your tip" in page
    draft = re.search(r'name="draft" type="hidden" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert draft and csrf and draft.group(1) == fields["draft"]
    response = send(client, {"draft": draft.group(1), "csrf_token": csrf.group(1)}, [])
    assert response.status_code == 200
    assert [a.status for a in latest_tip().attachments] == ["queued"]


def test_an_answer_through_the_receipt_thread_takes_files(
    client: FlaskClient, agency: Agency, photo: bytes
) -> None:
    receipt = send(client, form_fields(client), []).get_data(as_text=True)
    page = thread(client, receipt)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page)
    draft = re.search(r'name="draft" type="hidden" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token and draft and csrf
    response = send(
        client,
        {"token": token.group(1), "draft": draft.group(1), "csrf_token": csrf.group(1)},
        [(photo, "b.jpg", "image/jpeg")],
        body="Here is a photo of his car.",
        path="/tips/reply",
    )
    assert response.status_code == 200
    tip = latest_tip()
    (attachment,) = tip.attachments
    assert attachment.message_id == tip.messages[0].id
    assert "Photo 1" in response.get_data(as_text=True)


def test_a_flood_removes_the_oldest_unsent_drafts_first(
    app: Flask, client: FlaskClient, agency: Agency, photo: bytes
) -> None:
    settings = app.config["TATTLETALE"]
    # Room for two and a half photos beside one part being received (reserved at its
    # limit, two photos): three drafts fit, a fourth needs the oldest gone.
    app.config["TATTLETALE"] = replace(
        settings,
        tip_attachment_max_bytes=len(photo) * 2,
        tip_attachments_pending_bytes=len(photo) * 9 // 2,
    )
    drafts = []
    for _ in range(4):
        fields = form_fields(client)
        send(client, {**fields, "csrf_token": "expired"}, [(photo, "a.jpg", "image/jpeg")])
        drafts.append(fields["draft"])
    rows = db.session.scalars(sa.select(TipAttachment).order_by(TipAttachment.id)).all()
    assert len(rows) == 3  # the first draft went to make room for the fourth
    assert all(staging_path(r.public_id).exists() for r in rows)
    assert len(list(parts_dir().glob("tip-*"))) == 3
    # A sent tip's files are never dropped: with the quota full of them, new files are
    # refused and the tip still arrives.
    for draft in drafts[1:]:
        send(client, {"draft": draft, "csrf_token": form_fields(client)["csrf_token"]}, [])
    response = send(client, form_fields(client), [(photo, "b.jpg", "image/jpeg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "receiving too many files right now" in page
    assert db.session.scalar(sa.select(sa.func.count(TipAttachment.id))) == 3


@pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)
def test_abandoned_drafts_are_swept(
    client: FlaskClient, agency: Agency, photo: bytes, storage_location: tuple[str, str | None]
) -> None:
    send(client, {**form_fields(client), "csrf_token": "expired"}, [(photo, "a.jpg", "image/jpeg")])
    (draft,) = db.session.scalars(sa.select(TipAttachment)).all()
    store = get_store()
    on_s3 = storage_location[0].startswith("s3://")
    # A process killed between storing a draft's bytes and its row leaves an orphan.
    if on_s3:
        store.put_stream(draft_key("orphan"), io.BytesIO(b"x"), "application/octet-stream")
    assert sweep_drafts() == 0  # young drafts stay
    assert len(list(store.iter_keys(DRAFT_PREFIX))) == (2 if on_s3 else 0)
    draft.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    assert sweep_drafts(now_s=time.time() + 25 * 3600) == 1
    db.session.commit()
    assert not staging_path(draft.public_id).exists()
    assert list(store.iter_keys(DRAFT_PREFIX)) == []
    assert db.session.scalar(sa.select(sa.func.count(TipAttachment.id))) == 0


def test_staff_see_attachments_only_on_tips_they_may_handle(
    app: Flask,
    agency: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    make_user,
    photo: bytes,
) -> None:  # type: ignore[no-untyped-def]
    appeal = make_appeal(agency, users)
    public = app.test_client()
    path = f"/appeals/{appeal.public_id}/tip"
    send(public, form_fields(public, path), [(photo, "a.jpg", "image/jpeg")], path=path)
    assert run_jobs() == ["succeeded"]
    tip = latest_tip()
    (attachment,) = tip.attachments
    base = f"/staff/tips/{tip.public_id}/attachments/{attachment.public_id}"
    # Written out by hand: who may see this case's tip files.
    expected = {
        users[Role.DETECTIVE]: 200,  # on the case
        users[Role.SUPERVISOR]: 200,  # every case of the agency
        make_user(Role.DETECTIVE): 404,  # same agency, not on the case
        make_user(Role.SUPERVISOR, agency_=other_agency): 404,  # another agency
        users[Role.OFFICER]: 403,  # may not triage tips at all
    }
    from tests.portal.conftest import sign_in

    for user, status in expected.items():
        client = app.test_client()
        assert sign_in(client, user.email).status_code == 302
        view = client.get(f"{base}/view")
        assert view.status_code == status, (user.email, "view")
        original = client.get(f"{base}/original")
        assert original.status_code == status, (user.email, "original")
        if status == 200:
            assert (
                view.mimetype == "image/jpeg"
                and view.headers["Cache-Control"] == "private, no-store"
            )
            assert hashlib.sha256(original.data).hexdigest() == attachment.sha256
            assert "attachment;" in original.headers["Content-Disposition"]
            page = client.get(f"/staff/tips/{tip.public_id}").get_data(as_text=True)
            assert f'src="{base}/view"' in page and f'href="{base}/original"' in page
            assert "attachments</span>" in client.get("/staff/tips").get_data(as_text=True)
    downloads = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "tip.attachment_download")
    ).all()
    assert sorted(e.actor_id for e in downloads) == sorted(
        [users[Role.DETECTIVE].id, users[Role.SUPERVISOR].id]
    )
    assert all(e.details["sha256"] == attachment.sha256 for e in downloads)
    # Nothing of it is reachable from the public side.
    assert public.get(f"{base}/view").status_code in (302, 401, 404)


def test_a_failed_job_leaves_a_file_staff_can_retry(
    app: Flask,
    client: FlaskClient,
    agency: Agency,
    users: dict[Role, User],
    signed_in,
    photo: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    from media_pipeline import PipelineError
    from portal.services import attachments

    send(client, form_fields(client), [(photo, "a.jpg", "image/jpeg")])

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PipelineError("ffmpeg failed (exit status 1): out of memory")

    monkeypatch.setattr(attachments, "strip_image", broken)
    from portal.models import Job

    outcomes: list[str] = []
    for _ in range(app.config["TATTLETALE"].job_max_attempts):
        db.session.execute(sa.update(Job).values(run_after=utcnow()))  # no backoff wait
        db.session.commit()
        outcomes += run_jobs()
    assert outcomes == ["queued", "queued", "failed"]  # retried, then given up
    (row,) = latest_tip().attachments
    db.session.refresh(row)
    assert row.status == AttachmentStatus.FAILED.value and "out of memory" in row.reason
    assert staging_path(row.public_id).exists()  # the bytes wait for the retry
    monkeypatch.undo()
    staff = signed_in(users[Role.SUPERVISOR])
    page = staff.get(f"/staff/tips/{row.tip.public_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and "Process it again" in page
    retry = staff.post(
        f"/staff/tips/{row.tip.public_id}/attachments/{row.public_id}/retry",
        data={"csrf_token": token.group(1)},
    )
    assert retry.status_code == 302
    assert run_jobs() == ["succeeded"]
    db.session.refresh(row)
    assert row.status == "ready"
