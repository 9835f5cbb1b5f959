"""Migration 0004 moves the footage jobs' references both ways, with data."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from portal.extensions import db
from portal.models import Clip


def test_migration_0004_keeps_which_job_belongs_to_which_clip(app: Flask, ready_clip: Clip) -> None:
    version = ready_clip.versions[0]
    expected = {
        "ingest": ready_clip.ingest_job.id,  # type: ignore[union-attr]
        "proxy": ready_clip.proxy_job.id,  # type: ignore[union-attr]
        "render": version.job.id,  # type: ignore[union-attr]
    }
    clip_id, version_id = ready_clip.id, version.id
    db.session.commit()
    db.session.close()

    try:
        _check_down_and_up(clip_id, version_id, expected)
    finally:
        # Later revisions too: on PostgreSQL the database outlives this test.
        upgrade(revision="head")


def _check_down_and_up(clip_id: int, version_id: int, expected: dict[str, int]) -> None:
    downgrade(revision="0003")
    with db.engine.connect() as connection:
        ingest, proxy = connection.execute(
            sa.text("SELECT ingest_job_id, proxy_job_id FROM clips WHERE id = :id"), {"id": clip_id}
        ).one()
        render = connection.execute(
            sa.text("SELECT job_id FROM clip_versions WHERE id = :id"), {"id": version_id}
        ).scalar()
    assert {"ingest": ingest, "proxy": proxy, "render": render} == expected

    upgrade(revision="0004")
    with db.engine.connect() as connection:
        subjects = connection.execute(
            sa.text("SELECT id, subject_type, subject_id FROM jobs ORDER BY id")
        ).all()
    assert [tuple(s) for s in subjects] == [
        (expected["ingest"], "clip", clip_id),
        (expected["proxy"], "clip", clip_id),
        (expected["render"], "clip_version", version_id),
    ]
    clip = db.session.get(Clip, clip_id)
    assert clip is not None and clip.versions[0].job.id == expected["render"]  # type: ignore[union-attr]
