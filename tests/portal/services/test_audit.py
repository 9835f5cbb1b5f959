"""Every audit event belongs to the agency it concerns, and an admin reads only their
own agency's events, whatever they search for; events of no agency are the operators'."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, AuditEvent, Clip, Outcome, Role, User
from tests.portal.conftest import sign_in

UNKNOWN_ADDRESS = "nobody-here@springfield.example"
ROW = re.compile(r'<tr class="outcome-.*?</tr>', re.S)
OWN_SEARCH = re.compile(r"audit\.(view|export)")


@pytest.fixture
def springfield_history(
    app: Flask, cli: FlaskCliRunner, users: dict[Role, User], ready_clip: Clip
) -> list[str]:
    """What happens in agency A through real paths: a clip uploaded and rendered by
    the jobs, a user created from the CLI, failed sign-ins, refused requests.
    Returns strings that only A's events contain."""
    result = cli.invoke(
        args=[
            "users",
            "create",
            "cli-made@springfield.example",
            "--role",
            "officer",
            "--agency",
            "springfield",
        ],
        input="a long enough password 123\na long enough password 123\n",
    )
    assert result.exit_code == 0, result.output
    stranger = app.test_client()
    assert sign_in(stranger, users[Role.OFFICER].email, "wrong password").status_code == 401
    assert sign_in(stranger, UNKNOWN_ADDRESS, "wrong password").status_code == 401
    stranger.get("/staff/cases")  # not signed in: auth.required
    stranger.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    return [
        users[Role.OFFICER].email,
        users[Role.DETECTIVE].email,
        "cli-made@springfield.example",
        UNKNOWN_ADDRESS,
        ready_clip.public_id,
        ready_clip.case.public_id,
        ready_clip.versions[0].public_id,
        "/staff/cases",
        "/api/v1/me",
    ]


@pytest.fixture
def shelbyville_admin(
    app: Flask, other_agency: Agency, make_user: Callable[..., User]
) -> tuple[User, FlaskClient]:
    admin = make_user(Role.ADMIN, agency_=other_agency, email="admin@shelbyville.example")
    client = app.test_client()
    assert sign_in(client, admin.email).status_code == 302
    return admin, client


def test_jobs_and_cli_events_carry_the_agency_they_concern(
    springfield_history: list[str], agency: Agency
) -> None:
    for action in ("evidence.render", "evidence.upload", "user.create"):
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == action))
        assert event is not None and event.agency_id == agency.id, action
    unknown = db.session.scalar(select(AuditEvent).where(AuditEvent.actor_label == UNKNOWN_ADDRESS))
    assert unknown is not None and unknown.agency_id is None
    wrong_password = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "auth.login",
            AuditEvent.actor_label == "officer@springfield.example",
        )
    )
    assert wrong_password is not None and wrong_password.agency_id == agency.id


def test_admin_of_another_agency_sees_nothing_whatever_the_filter(
    springfield_history: list[str],
    shelbyville_admin: tuple[User, FlaskClient],
) -> None:
    admin, client = shelbyville_admin
    today = datetime.now(UTC).date().isoformat()
    filters = {
        "actor": ["", "officer", "springfield", "nobody", "system", "anonymous", "cli-made"],
        "action": ["", "auth", "auth.login", "evidence", "evidence.render", "user", "case", "api"],
        "object_id": ["", *springfield_history[4:7]],
        "outcome": ["", *(o.value for o in Outcome)],
        "since": ["", today],
        "until": ["", today],
    }
    # Every value of each filter on its own, and every action with every outcome.
    queries = [{name: value} for name, values in filters.items() for value in values if value]
    queries += [
        {"action": a, "outcome": o}
        for a, o in itertools.product(filters["action"], filters["outcome"])
    ]
    queries.append({})
    for query in queries:
        page = client.get("/staff/admin/audit", query_string=query)
        assert page.status_code == 200, query
        # The rows only (the search form echoes what was searched for), less the
        # admin's own audit.view / audit.export events, which record the search.
        rows = [
            row for row in ROW.findall(page.get_data(as_text=True)) if not OWN_SEARCH.search(row)
        ]
        export = client.get("/staff/admin/audit/export.csv", query_string=query, buffered=True)
        assert export.status_code == 200, query
        table = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
        assert all(row["agency_id"] == str(admin.agency_id) for row in table), query
        exported = [row for row in table if not row["action"].startswith("audit.")]
        for marker in springfield_history:
            assert not any(marker in row for row in rows), (query, marker)
            assert not any(marker in str(row) for row in exported), (query, marker)


def test_admin_sees_their_agency_events_but_not_the_unattributed_ones(
    springfield_history: list[str], client: FlaskClient, users: dict[Role, User]
) -> None:
    assert sign_in(client, users[Role.ADMIN].email).status_code == 302
    html = client.get("/staff/admin/audit", query_string={"action": "evidence"}).get_data(
        as_text=True
    )
    assert "evidence.render" in html and "evidence.upload" in html
    everything = client.get("/staff/admin/audit/export.csv", buffered=True).get_data(as_text=True)
    assert "cli-made@springfield.example" in everything
    # A sign-in for an address nobody has names no agency: the operators' business.
    assert UNKNOWN_ADDRESS not in everything
    assert ",api.auth," not in everything and ",auth.required," not in everything


def test_operators_list_unattributed_events_from_the_cli(
    springfield_history: list[str], cli: FlaskCliRunner, agency: Agency
) -> None:
    unattributed = cli.invoke(args=["audit", "list", "--unattributed"])
    assert unattributed.exit_code == 0, unattributed.output
    assert UNKNOWN_ADDRESS in unattributed.output and "api.auth" in unattributed.output
    assert "evidence.render" not in unattributed.output
    of_agency = cli.invoke(args=["audit", "list", "--agency", agency.slug, "--action", "evidence"])
    assert of_agency.exit_code == 0, of_agency.output
    assert "evidence.render" in of_agency.output and UNKNOWN_ADDRESS not in of_agency.output
    assert cli.invoke(args=["audit", "list"]).exit_code == 2
