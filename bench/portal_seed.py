"""Fill a benchmark stack's database: run in its own process with the stack's
environment (bench/stack.py), before the server starts.

    python bench/portal_seed.py APPEALS [--clip SECONDS]

Migrates, then creates one agency with a detective, an officer (with an API token
for tus uploads) and a supervisor; APPEALS published appeals made of rows (the
listing and page read no media), one of them with a real 720p rendition and poster
in the store (the viral video), and 500 earlier tips on it so the detective's queue
is not empty. With --clip, a 1080p clip of SECONDS is ingested through the real jobs,
so a render can be started on it. The bench's baseline table (``bench_rows``) is made
here too. Prints one JSON line with what the benchmarks need.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.jobs.execution import due_job_ids, execute_job  # noqa: E402
from portal.models import (  # noqa: E402
    Agency,
    Appeal,
    AppealClip,
    AppealStatus,
    Approval,
    Clip,
    ClipVersion,
    Job,
    Rendition,
    Role,
    User,
    UserRole,
)
from portal.models.base import utcnow  # noqa: E402
from portal.services.cases import assign_detective, create_case  # noqa: E402
from portal.services.clips import attach_upload, renditions_digest  # noqa: E402
from portal.services.passwords import hash_password  # noqa: E402
from portal.services.storage import get_store  # noqa: E402
from portal.services.tips import TipInput, submit_tip  # noqa: E402
from portal.services.uploads import append_to_upload, create_upload  # noqa: E402
from portal.services.users import create_api_token  # noqa: E402

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
PASSWORD = "bench detective passphrase"  # noqa: S105  (a throwaway database)
OFFENSES = ["burglary", "robbery", "theft", "vandalism", "assault", "fraud"]
PLACES = ["Main Street", "Elm Avenue", "Harbor Road", "Oak Park", "Station Square"]
# The bare baseline's one row: a body and a time, like a tip without its extras.
BARE_TABLE = (
    "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, body text NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())"
)


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_video(path: Path, size: str, seconds: int, bitrate: str) -> None:
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
        "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
        "-b:v", bitrate, "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart", str(path),
    )  # fmt: skip


def user(agency: Agency, email: str, role: Role, password_hash: str) -> User:
    row = User(
        agency=agency,
        email=email,
        display_name=email.split("@")[0].title(),
        password_hash=password_hash,
        role_rows=[UserRole(role=role.value)],
    )
    db.session.add(row)
    return row


def appeal_rows(
    agency: Agency, owner: User, approver: User, index: int, renditions: list[Rendition]
) -> Appeal:
    """A published appeal, like tests/portal/conftest.py's listed_appeal."""
    case = create_case(
        agency,
        number=f"B-{index:05d}",
        title=f"Appeal {index}",
        created_by=owner,
        offense=OFFENSES[index % len(OFFENSES)],
        location_address=f"{index} {PLACES[index % len(PLACES)]}",
    )
    clip = Clip(case=case, uploaded_by=owner, status="ready", original_key=f"B-{index}/original")
    version = ClipVersion(clip=clip, number=1, plan={}, created_by=owner, status="ready")
    version.renditions = renditions
    db.session.add_all([clip, version])
    db.session.flush()
    db.session.add(
        Approval(
            version=version,
            approved_by=approver,
            renditions_digest=renditions_digest(version.renditions),
        )
    )
    appeal = Appeal(
        agency_id=agency.id,
        case=case,
        title=f"Do you recognise the person in appeal {index}?",
        summary="Seen on a doorbell camera. " * 8,
        created_by=owner,
        status=AppealStatus.PUBLISHED.value,
        published_at=utcnow() - timedelta(hours=index),
    )
    appeal.clips = [AppealClip(version=version, position=0)]
    db.session.add(appeal)
    return appeal


def fake_renditions(index: int) -> list[Rendition]:
    return [
        Rendition(
            name="web_720", role="video", storage_key=f"B-{index}/web_720.mp4",
            content_type="video/mp4", size=10, sha256="a" * 64, width=1280, height=720,
            duration_s=75.0,
        ),
        Rendition(
            name="poster", role="poster", storage_key=f"B-{index}/poster.jpg",
            content_type="image/jpeg", size=10, sha256="b" * 64, width=1280, height=720,
        ),
    ]  # fmt: skip


def stored_renditions(work: Path) -> list[Rendition]:
    """The viral appeal's renditions: real files in the store."""
    video, poster = work / "web_720.mp4", work / "poster.jpg"
    make_video(video, "1280x720", 60, "2500k")
    ffmpeg("-ss", "1", "-i", str(video), "-frames:v", "1", "-q:v", "3", str(poster))
    store = get_store()
    out = []
    for name, role, path, kind in [
        ("web_720", "video", video, "video/mp4"),
        ("poster", "poster", poster, "image/jpeg"),
    ]:
        stored = store.put_file(f"viral/{path.name}", path, kind)
        out.append(
            Rendition(
                name=name, role=role, storage_key=stored.key, content_type=kind,
                size=stored.size, sha256=stored.sha256, width=1280, height=720,
                duration_s=60.0 if role == "video" else None,
            )
        )  # fmt: skip
    return out


def ingested_clip(case_owner: User, case, work: Path, seconds: int) -> Clip:  # type: ignore[no-untyped-def]
    source = work / "source.mp4"
    make_video(source, "1920x1080", seconds, "8000k")
    upload = create_upload(
        case_owner,
        length=source.stat().st_size,
        max_bytes=10**10,
        filename=source.name,
        case=case,
    )
    db.session.commit()
    with open(source, "rb") as stream:
        append_to_upload(upload, offset=0, stream=stream)
    assert upload.status == "complete", upload.status
    clip = attach_upload(case, upload.public_id, case_owner)
    db.session.commit()
    # Ingest and the proxy, through the real jobs. Version 1's render is left queued
    # (no worker consumes the bench's queue): the benchmark starts renders itself.
    for _ in range(10):
        ids = [
            job_id
            for job_id in due_job_ids()
            if db.session.get(Job, job_id).name != "clips.render"  # type: ignore[union-attr]
        ]
        if not ids:
            break
        for job_id in ids:
            execute_job(job_id, "bench-seed")
    db.session.refresh(clip)
    assert clip.status == "ready", clip.status
    return clip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("appeals", type=int)
    parser.add_argument("--clip", type=int, default=0, help="seconds of a clip to ingest")
    args = parser.parse_args()
    app = create_app()
    with app.app_context(), tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
        # Every head: branches being re-chained on main still migrate to the end.
        upgrade(revision="heads")
        db.session.execute(text(BARE_TABLE))
        hashed = hash_password(PASSWORD)
        agency = Agency(name="Bench Police Department", slug="bench")
        db.session.add(agency)
        supervisor = user(agency, "supervisor@bench.example", Role.SUPERVISOR, hashed)
        detective = user(agency, "detective@bench.example", Role.DETECTIVE, hashed)
        officer = user(agency, "officer@bench.example", Role.OFFICER, hashed)
        db.session.flush()
        _, token = create_api_token(officer)
        viral = appeal_rows(agency, officer, supervisor, 0, stored_renditions(Path(tmp)))
        appeals = [viral]
        for index in range(1, args.appeals):
            appeals.append(appeal_rows(agency, officer, supervisor, index, fake_renditions(index)))
        db.session.flush()
        assign_detective(viral.case, detective, actor=supervisor)
        for index in range(500):
            submit_tip(
                TipInput(body=f"Earlier tip {index}: I think I know him.", via="facebook"),
                agency=agency,
                appeal=viral,
            )
        db.session.commit()
        info: dict[str, object] = {
            "appeals": [a.public_id for a in appeals],
            "viral": viral.public_id,
            "viral_media": (f"/media/{viral.public_id}/{viral.clips[0].version.public_id}/web_720"),
            "viral_media_size": viral.clips[0].version.renditions[0].size,
            "detective": detective.email,
            "password": PASSWORD,
            "token": token,
        }
        if args.clip:
            clip = ingested_clip(officer, viral.case, Path(tmp), args.clip)
            info["clip"] = clip.public_id
        print(json.dumps(info), flush=True)
    os._exit(0)  # a Celery producer thread may linger; nothing is left to flush


if __name__ == "__main__":
    main()
