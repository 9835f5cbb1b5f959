"""Operator commands: ``flask --app wsgi <group> <command>``."""

from __future__ import annotations

import secrets
import sys
import time
from datetime import timedelta

import click
from flask import Flask, current_app
from sqlalchemy import select

from portal import cli_security
from portal.cli_errors import fail as _fail
from portal.extensions import db
from portal.models import Agency, Job, JobStatus, User
from portal.services.errors import DomainError
from portal.services.users import (
    create_api_token,
    create_user,
    disable_user,
    enable_user,
    parse_roles,
    require_user,
    set_password,
)

users = click.Group("users", help="Staff accounts.")
agencies = click.Group("agencies", help="Agencies on this instance.")
demo = click.Group("demo", help="The demo agency for trying Tattletale out.")
jobs = click.Group("jobs", help="Background jobs.")
evidence = click.Group("evidence", help="Stored footage: integrity checks.")


def _pick_agency(slug: str | None) -> Agency:
    if slug:
        agency = db.session.scalar(select(Agency).where(Agency.slug == slug))
        if agency is None:
            _fail(f"no agency with slug {slug!r}")
        assert agency is not None
        return agency
    all_agencies = db.session.scalars(select(Agency)).all()
    if len(all_agencies) != 1:
        _fail("name the agency with --agency SLUG (there is not exactly one)")
    return all_agencies[0]


@agencies.command("create")
@click.argument("name")
@click.option("--slug", required=True, help="Short name used in URLs.")
@click.option("--timezone", default="UTC", show_default=True)
@click.option(
    "--require-mfa/--no-require-mfa",
    default=None,
    help="Staff must use two-step sign-in (default: on in production).",
)
def agencies_create(name: str, slug: str, timezone: str, require_mfa: bool | None) -> None:
    if db.session.scalar(select(Agency).where(Agency.slug == slug)):
        _fail(f"an agency with slug {slug!r} exists")
    if require_mfa is None:
        require_mfa = current_app.config["TATTLETALE"].is_production
    db.session.add(Agency(name=name, slug=slug, timezone=timezone, require_mfa=require_mfa))
    db.session.commit()
    click.echo(f"created agency {slug}")


@agencies.command("watermark")
@click.argument("slug")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
def agencies_watermark(slug: str, image: str) -> None:
    """Set the agency logo (PNG or JPEG) that edits may burn into appeals."""
    from portal.services.agencies import set_watermark

    agency = _pick_agency(slug)
    try:
        set_watermark(agency, image, actor=None)
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"watermark set for {agency.slug}")


@evidence.command("verify")
@click.argument("case_ref", required=False)
def evidence_verify(case_ref: str | None) -> None:
    """Re-hash stored originals and renditions (of CASE: its id or number) and compare
    them with the recorded hashes. Exit 1 on any mismatch or missing object."""
    from portal.models import Case
    from portal.services.evidence import record_verification, verify_evidence

    case = None
    if case_ref:
        matches = db.session.scalars(
            select(Case).where((Case.public_id == case_ref) | (Case.number == case_ref))
        ).all()
        if len(matches) != 1:
            _fail(f"no single case with id or number {case_ref!r}")
        case = matches[0]
    checked, problems = 0, []
    for check in verify_evidence(case):
        checked += 1
        if not check.ok:
            problems.append(check)
            click.echo(f"{check.problem}: {check.key} (clip {check.clip})")
    record_verification(case, checked, problems)
    db.session.commit()
    click.echo(
        f"{'ok' if not problems else 'FAILED'}: {checked} objects checked, {len(problems)} problems"
    )
    sys.exit(1 if problems else 0)


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="officer, detective, supervisor, coordinator or admin; repeat for several.",
)
@click.option("--agency", "agency_slug", help="Agency slug (default: the only agency).")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--generate-password", is_flag=True, help="Generate a password and print it once.")
def users_create(
    email: str,
    roles: tuple[str, ...],
    agency_slug: str | None,
    display_name: str,
    generate_password: bool,
) -> None:
    """Create a staff account. Asks for the password unless --generate-password."""
    agency = _pick_agency(agency_slug)
    try:
        role_set = parse_roles(roles)
        if generate_password:
            password = secrets.token_urlsafe(12)
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        user = create_user(agency, email, password, role_set, display_name=display_name)
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"created {user.email} ({', '.join(sorted(r.value for r in user.roles))})")
    if generate_password:
        click.echo(f"password: {password}")


@users.command("list")
def users_list() -> None:
    for user in db.session.scalars(select(User).order_by(User.email)):
        state = "disabled" if user.is_disabled else "active"
        roles = ",".join(sorted(r.value for r in user.roles))
        click.echo(f"{user.email}\t{user.agency.slug}\t{roles}\t{state}")


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable an account: ends its sessions and revokes its tokens."""
    try:
        disable_user(require_user(email))
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"disabled {email}")


@users.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    try:
        enable_user(require_user(email))
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"enabled {email}")


@users.command("password")
@click.argument("email")
@click.option("--generate-password", is_flag=True)
def users_password(email: str, generate_password: bool) -> None:
    """Set a new password (ends the account's sessions)."""
    try:
        user = require_user(email)
        password = (
            secrets.token_urlsafe(12)
            if generate_password
            else click.prompt("New password", hide_input=True, confirmation_prompt=True)
        )
        set_password(user, password)
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"password changed for {email}")
    if generate_password:
        click.echo(f"password: {password}")


@users.command("token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True)
@click.option(
    "--days",
    default=90,
    show_default=True,
    type=click.IntRange(1, 366),
    help="Days until the token expires.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A role the token may act as (repeat; default: every role the account holds).",
)
def users_token(email: str, name: str, days: int, scopes: tuple[str, ...]) -> None:
    """Print a new API token for the account. It is shown once and stored hashed.

    No second factor is asked, even where the agency requires one: whoever runs this
    already holds the database and the secret key (see the README)."""
    try:
        user = require_user(email)
        if user.is_disabled:
            _fail(f"{email} is disabled")
        _, secret = create_api_token(
            user,
            name=name,
            expires_in=timedelta(days=days),
            scopes=parse_roles(scopes) if scopes else None,
        )
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    click.echo(secret)


@demo.command("seed")
def demo_seed() -> None:
    """Create the demo agency, one user per role and a demo case (idempotent)."""
    from portal.services.demo import seed_demo

    accounts = seed_demo()
    db.session.commit()
    new = [a for a in accounts if a.password]
    if new:
        click.echo("Demo accounts (passwords are shown this once):")
        for account in new:
            click.echo(f"  {account.role.value:<12} {account.email:<40} {account.password}")
    else:
        click.echo(
            "Demo accounts already exist. Forgot a password? "
            "flask --app wsgi users password EMAIL --generate-password"
        )


@jobs.command("ping")
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the result.")
def jobs_ping(wait: float) -> None:
    """Send the ping job and wait for a runner to answer it."""
    from portal.jobs import enqueue

    job = enqueue("ping")
    db.session.commit()
    runner = current_app.extensions["tattletale.runner"]
    if hasattr(runner, "start"):
        runner.start()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        db.session.expire_all()
        row = db.session.get(Job, job.id)
        assert row is not None
        if row.status in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value):
            click.echo(f"{row.status}: {row.stage or row.error}")
            sys.exit(0 if row.status == JobStatus.SUCCEEDED.value else 1)
        time.sleep(0.2)
    _fail(f"no runner answered within {wait} s")


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
def jobs_list(status: str | None) -> None:
    query = select(Job).order_by(Job.id.desc()).limit(50)
    if status:
        query = query.where(Job.status == status)
    for row in db.session.scalars(query):
        subject = f"{row.subject_type}:{row.subject_id}" if row.subject_type else "-"
        click.echo(
            f"{row.public_id}\t{row.name}\t{subject}\t{row.status}\t{row.progress:.0%}\t"
            f"attempts={row.attempts}/{row.max_attempts}\t{row.worker or '-'}\t"
            f"{row.error[:60]}"
        )


@jobs.command("retry")
@click.argument("ref")
def jobs_retry(ref: str) -> None:
    """Start the failed work of a clip again. REF is the clip's id, or the id of one
    of its failed jobs (as `jobs list --status failed` shows)."""
    from portal.models import Clip, ClipVersion
    from portal.services.clips import retry_clip

    clip = db.session.scalar(select(Clip).where(Clip.public_id == ref))
    if clip is None:
        row = db.session.scalar(select(Job).where(Job.public_id == ref))
        if row is not None and row.subject_type == "clip" and row.subject_id is not None:
            clip = db.session.get(Clip, row.subject_id)
        elif row is not None and row.subject_type == "clip_version" and row.subject_id:
            version = db.session.get(ClipVersion, row.subject_id)
            clip = version.clip if version is not None else None
        elif row is not None:
            _fail(f"job {ref} is not about a clip; nothing to retry")
    if clip is None:
        _fail(f"no clip or job with id {ref!r}")
    assert clip is not None
    try:
        started = retry_clip(clip, None)
        db.session.commit()
    except DomainError as exc:
        _fail(exc.message)
    for row in started:
        click.echo(f"queued {row.name} {row.public_id}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default: TATTLETALE_PORT or 5000.")
@click.option(
    "--staff-port",
    type=int,
    envvar="TATTLETALE_STAFF_PORT",
    help="Also serve staff pages from workers of their own on this port (TATTLETALE_STAFF_PORT).",
)
def serve(host: str, port: int | None, staff_port: int | None) -> None:
    """Serve the portal with gunicorn; in the embedded mode one of its processes also
    runs the local job runner (see portal/jobs/lease.py)."""
    from portal.http.server import serve as serve_portal

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["TATTLETALE"].port
    click.echo(f"Tattletale is serving on http://{host}:{port}/ (staff: /staff/)")
    if staff_port:
        click.echo(f"Staff pages from workers of their own: http://{host}:{staff_port}/staff/")
    serve_portal(app, host=host, port=port, staff_port=staff_port or None)


def init_app(app: Flask) -> None:
    from portal.publishing.cli import posts

    for group in (users, agencies, demo, jobs, evidence, posts):
        app.cli.add_command(group)
    app.cli.add_command(serve)
    cli_security.init_app(app, users=users)
