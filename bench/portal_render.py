"""A render through the real job path, as a worker on the web machine would run it:
``python bench/portal_render.py CLIP_ID`` with a benchmark stack's environment.

Saves a new version of the clip (an empty edit plan, as the pipeline's default
renditions), which enqueues its render job, and runs that job here with
``execute_job``: the claim, the heartbeat, ffmpeg under the job's supervision at
``TATTLETALE_TRANSCODE_NICE``. Prints ``rendering`` when the job starts; the
benchmark kills this process and its ffmpeg when it has measured enough.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from media_pipeline import EditPlan  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.jobs.execution import execute_job  # noqa: E402
from portal.models import Clip, Job, Role, User, UserRole  # noqa: E402
from portal.services.clips import create_version  # noqa: E402


def main() -> None:
    app = create_app()
    with app.app_context():
        clip = db.session.scalar(select(Clip).where(Clip.public_id == sys.argv[1]))
        assert clip is not None
        officer = db.session.scalar(
            select(User).join(UserRole).where(UserRole.role == Role.OFFICER.value)
        )
        assert officer is not None
        version = create_version(clip, EditPlan(), officer)
        db.session.commit()
        job_id = db.session.scalar(
            select(Job.id).where(Job.name == "clips.render", Job.subject_id == version.id)
        )
        assert job_id is not None
        print("rendering", flush=True)
        print(execute_job(job_id, "bench-render"), flush=True)


if __name__ == "__main__":
    main()
