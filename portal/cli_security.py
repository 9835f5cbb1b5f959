"""Operator commands for staff security: ``flask --app wsgi audit|secrets ...`` and the
security commands of ``flask --app wsgi users ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask

from portal.cli_errors import fail
from portal.extensions import db
from portal.services import crypto, mfa
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
