"""Operator commands for staff security: ``flask --app wsgi audit|secrets ...`` and the
security commands of ``flask --app wsgi users ...``."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from sqlalchemy import select

from portal.cli_errors import fail
from portal.extensions import db
from portal.models import Agency
from portal.services import crypto, mfa
from portal.services.audit import AuditFilter, search_events
from portal.services.audit_chain import verify_chain
from portal.services.errors import DomainError
from portal.services.users import parse_roles, require_user, set_roles, sign_out_everywhere

audit = click.Group("audit", help="The tamper-evident audit log.")
secrets_group = click.Group("secrets", help="Secrets at rest and their encryption keys.")


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain of the whole audit log; name the first broken entry."""
    report = verify_chain(db.engine)
    if report.ok:
        click.echo(f"ok: {report.entries} entries")
        # Keep this somewhere the database's owner cannot write: removal of the
        # newest entries shows only against a head recorded earlier.
        click.echo(f"head: {report.head}")
        return
    click.echo(f"broken at entry {report.broken_at}: {report.reason}")
    sys.exit(1)


@audit.command("list")
@click.option("--agency", "agency_slug", help="Events of this agency.")
@click.option(
    "--unattributed",
    is_flag=True,
    help="Events that concern no agency (sign-ins for unknown addresses, store-wide checks).",
)
@click.option("--action", default="", help="An action or its prefix (auth, auth.login).")
@click.option("--actor", default="", help="The start of the actor's address.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def audit_list(
    agency_slug: str | None, unattributed: bool, action: str, actor: str, limit: int
) -> None:
    """The newest events, one per line. Agency admins see their own agency's events on
    the audit page; the events of no agency are read only here, by the operators."""
    if unattributed == bool(agency_slug):
        fail("give either --agency SLUG or --unattributed")
    agency_id = None
    if agency_slug:
        agency = db.session.scalar(select(Agency).where(Agency.slug == agency_slug))
        if agency is None:
            fail(f"no agency with slug {agency_slug!r}")
        assert agency is not None
        agency_id = agency.id
    search = AuditFilter(actor=actor, action=action)
    for event in search_events(agency_id, search, limit=limit):
        click.echo(
            "\t".join(
                [
                    str(event.id),
                    event.occurred_at.isoformat(),
                    event.action,
                    event.outcome,
                    event.actor_label,
                    f"{event.object_type}:{event.object_id}",
                    event.client_addr or "-",
                    json.dumps(event.details, sort_keys=True),
                ]
            )
        )


@click.command("roles")
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="The account's roles from now on; repeat for several.",
)
def users_roles(email: str, roles: tuple[str, ...]) -> None:
    """Replace the account's roles (audited as user.roles_change)."""
    try:
        user = require_user(email)
        set_roles(user, parse_roles(roles))
        db.session.commit()
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"{user.email}: {', '.join(sorted(r.value for r in user.held_roles))}")


@click.command("reset-mfa")
@click.argument("email")
def users_reset_mfa(email: str) -> None:
    """Remove the account's second factor (lost phone). Ends its sessions; the user
    enrols again at the next sign-in where the agency requires it."""
    try:
        user = require_user(email)
        if not user.mfa_enabled and user.totp_secret is None:
            click.echo(f"{email} has no second factor")
            return
        mfa.disable_mfa(user, actor=None, reason="operator_reset")
        db.session.commit()
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"two-step sign-in reset for {email}")


@click.command("sign-out-everywhere")
@click.argument("email")
def users_sign_out_everywhere(email: str) -> None:
    """End every session of the account (a stolen laptop, a suspected intrusion)."""
    try:
        user = require_user(email)
        ended = sign_out_everywhere(user)
        db.session.commit()
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"ended {ended} session(s) of {email}")


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every secret at rest with the first key of TATTLETALE_ENCRYPTION_KEYS.

    Put the new key first, keep the old ones after it, run this, then remove the
    old keys. One transaction: it all moves to the new key or none of it does.
    """
    try:
        counts = crypto.rotate_secrets()
        db.session.commit()
    except crypto.DecryptionFailed as exc:
        db.session.rollback()
        fail(str(exc))
    for name, count in counts.items():
        click.echo(f"{name}: {count} re-encrypted")
    click.echo(f"total: {sum(counts.values())}")


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for TATTLETALE_ENCRYPTION_KEYS (put it first to rotate to it)."""
    click.echo(crypto.generate_key())


def init_app(app: Flask, *, users: click.Group) -> None:
    """Add the security commands to the ``users`` group, and the groups of their own."""
    for command in (users_roles, users_reset_mfa, users_sign_out_everywhere):
        users.add_command(command)
    app.cli.add_command(audit)
    app.cli.add_command(secrets_group)
