"""The demo agency that ``make run`` creates, so a new install has something to click."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, Case, Role
from portal.services.cases import assign_detective, create_case
from portal.services.users import create_user, get_user_by_email

DEMO_AGENCY_SLUG = "demo"
DEMO_DOMAIN = "demo.tattletale.example"
DEMO_CASE_NUMBER = "2026-000123"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: Role
    password: str | None  # None when the account already existed


def seed_demo() -> list[DemoAccount]:
    """Create the demo agency, one user per role and a demo case. Safe to run again:
    what exists is left alone, and only new accounts get (and show) a password."""
    agency = db.session.scalar(select(Agency).where(Agency.slug == DEMO_AGENCY_SLUG))
    if agency is None:
        agency = Agency(
            name="Demo Police Department",
            slug=DEMO_AGENCY_SLUG,
            timezone="UTC",
            # Two-step sign-in is required in production, optional for trying it out.
            require_mfa=current_app.config["TATTLETALE"].is_production,
        )
        db.session.add(agency)
        db.session.flush()

    accounts = []
    users = {}
    for role in Role:
        email = f"{role.value}@{DEMO_DOMAIN}"
        user = get_user_by_email(email)
        password = None
        if user is None:
            # Four random words would be friendlier; 16 URL-safe characters are enough.
            password = secrets.token_urlsafe(12)
            user = create_user(
                agency, email, password, {role}, display_name=f"Demo {role.value.title()}"
            )
        users[role] = user
        accounts.append(DemoAccount(email=email, role=role, password=password))

    case = db.session.scalar(
        select(Case).where(Case.agency_id == agency.id, Case.number == DEMO_CASE_NUMBER)
    )
    if case is None:
        case = create_case(
            agency,
            number=DEMO_CASE_NUMBER,
            title="Convenience store robbery on Main Street",
            created_by=users[Role.OFFICER],
            offense="Armed robbery",
            occurred_at=datetime(2026, 11, 3, 21, 40, tzinfo=UTC),
            location_address="400 Main Street",
            public_summary=(
                "A man in a grey hooded jacket threatened the clerk and left with cash. "
                "Do you recognize him?"
            ),
        )
        assign_detective(case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.flush()
    return accounts
