from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Case, Role, User, UserRole
from portal.services.cases import assign_detective, create_case
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def agency(app: Flask) -> Agency:
    agency = Agency(name="Springfield Police Department", slug="springfield")
    db.session.add(agency)
    db.session.commit()
    return agency


@pytest.fixture
def other_agency(app: Flask) -> Agency:
    agency = Agency(name="Shelbyville Police Department", slug="shelbyville")
    db.session.add(agency)
    db.session.commit()
    return agency


UserFactory = Callable[..., User]


@pytest.fixture
def make_user(agency: Agency, password_hash: str) -> UserFactory:
    counter = iter(range(1, 10_000))

    def make(*roles: Role, email: str | None = None, agency_: Agency | None = None) -> User:
        number = next(counter)
        user = User(
            agency=agency_ or agency,
            email=email or f"user{number}@springfield.example",
            display_name=f"User {number}",
            password_hash=password_hash,
            role_rows=[UserRole(role=r.value) for r in roles],
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def users(make_user: UserFactory) -> dict[Role, User]:
    return {role: make_user(role, email=f"{role.value}@springfield.example") for role in Role}


@pytest.fixture
def case(agency: Agency, users: dict[Role, User]) -> Case:
    case = create_case(
        agency, number="24-0001", title="Robbery at the Kwik-E-Mart", created_by=users[Role.OFFICER]
    )
    assign_detective(case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    return case


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = TEST_PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/staff/login")
    return client.post(
        "/staff/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def signed_in(client: FlaskClient) -> Callable[[User], FlaskClient]:
    def do(user: User) -> FlaskClient:
        response = sign_in(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return do
