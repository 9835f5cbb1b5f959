"""Jobs: a claim token per run, a generic subject, uniqueness keys, transient
failures; a version records the render that holds it. The per-job-type foreign keys
on clips and versions give way to the job's subject.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

jobs = sa.table(
    "jobs",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("args", sa.JSON),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.Integer),
)
clips = sa.table(
    "clips",
    sa.column("id", sa.Integer),
    sa.column("ingest_job_id", sa.Integer),
    sa.column("proxy_job_id", sa.Integer),
)
versions = sa.table("clip_versions", sa.column("id", sa.Integer), sa.column("job_id", sa.Integer))


def _sqlite_foreign_keys(enabled: bool) -> None:
    """SQLite's own procedure for rebuilding a table that others reference: foreign
    keys off while batch mode copies, drops and renames it, checked when back on.
    The pragma is ignored inside a transaction, so the open one is committed first
    (SQLite migrations are not transactional in Alembic anyway)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw = bind.connection.dbapi_connection
    raw.commit()
    raw.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    if enabled:
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")


def upgrade():
    op.add_column(
        "jobs", sa.Column("claim_token", sa.String(length=32), nullable=False, server_default="")
    )
    op.add_column(
        "jobs", sa.Column("subject_type", sa.String(length=32), nullable=False, server_default="")
    )
    op.add_column("jobs", sa.Column("subject_id", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("unique_key", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("transient_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("transient_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_jobs_subject", "jobs", ["subject_type", "subject_id", "name"])
    op.create_index("uq_jobs_unique_key", "jobs", ["unique_key"], unique=True)
    op.add_column(
        "clip_versions",
        sa.Column("render_token", sa.String(length=32), nullable=False, server_default=""),
    )

    bind = op.get_bind()
    # Every job the old columns pointed at gets its subject. Older runs of the same
    # work were never referenced; their args name the subject.
    footage_jobs = sa.select(jobs.c.id, jobs.c.name, jobs.c.args).where(
        jobs.c.name.in_(["clips.ingest", "clips.proxy", "clips.render"])
    )
    for job_id, name, args in bind.execute(footage_jobs).all():
        args = args or {}
        if name == "clips.render" and isinstance(args.get("version_id"), int):
            subject = ("clip_version", args["version_id"])
        elif isinstance(args.get("clip_id"), int):
            subject = ("clip", args["clip_id"])
        else:
            continue
        bind.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(subject_type=subject[0], subject_id=subject[1])
        )

    _sqlite_foreign_keys(False)
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.drop_constraint("fk_clips_ingest_job_id_jobs", type_="foreignkey")
        batch_op.drop_constraint("fk_clips_proxy_job_id_jobs", type_="foreignkey")
        batch_op.drop_column("ingest_job_id")
        batch_op.drop_column("proxy_job_id")
    with op.batch_alter_table("clip_versions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_clip_versions_job_id_jobs", type_="foreignkey")
        batch_op.drop_column("job_id")
    _sqlite_foreign_keys(True)


def _latest(bind, name, subject_type, subject_id):
    return bind.execute(
        sa.select(sa.func.max(jobs.c.id)).where(
            jobs.c.name == name,
            jobs.c.subject_type == subject_type,
            jobs.c.subject_id == subject_id,
        )
    ).scalar()


def downgrade():
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("clip_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_clip_versions_job_id_jobs", "jobs", ["job_id"], ["id"])
        batch_op.drop_column("render_token")
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ingest_job_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("proxy_job_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_clips_ingest_job_id_jobs", "jobs", ["ingest_job_id"], ["id"]
        )
        batch_op.create_foreign_key("fk_clips_proxy_job_id_jobs", "jobs", ["proxy_job_id"], ["id"])

    bind = op.get_bind()
    for (clip_id,) in bind.execute(sa.select(clips.c.id)).all():
        bind.execute(
            clips.update()
            .where(clips.c.id == clip_id)
            .values(
                ingest_job_id=_latest(bind, "clips.ingest", "clip", clip_id),
                proxy_job_id=_latest(bind, "clips.proxy", "clip", clip_id),
            )
        )
    for (version_id,) in bind.execute(sa.select(versions.c.id)).all():
        bind.execute(
            versions.update()
            .where(versions.c.id == version_id)
            .values(job_id=_latest(bind, "clips.render", "clip_version", version_id))
        )
    _sqlite_foreign_keys(True)

    op.drop_index("uq_jobs_unique_key", table_name="jobs")
    op.drop_index("ix_jobs_subject", table_name="jobs")
    for column in (
        "transient_failures",
        "transient_since",
        "unique_key",
        "subject_id",
        "subject_type",
        "claim_token",
    ):
        op.drop_column("jobs", column)
